// Runs SQL queries with DuckDB, an independent Parquet reader, and prints
// each query's rows as one JSON array a line:
//   node duckdb_sql.mjs "SELECT ..." ["SELECT ..." ...]
import { DuckDBInstance } from "@duckdb/node-api";

const queries = process.argv.slice(2);
if (queries.length === 0) {
  console.error('usage: node duckdb_sql.mjs "SQL" ...');
  process.exit(2);
}
const instance = await DuckDBInstance.create(":memory:");
const conn = await instance.connect();
for (const sql of queries) {
  console.log(JSON.stringify((await conn.runAndReadAll(sql)).getRowObjectsJson()));
}
