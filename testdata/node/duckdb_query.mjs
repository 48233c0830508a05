// Runs one SQL query with DuckDB over a Lookout archive and prints the
// rows as a JSON array; {archive} in the query is the archive as a table:
//   node duckdb_query.mjs DATA_DIR "SELECT ... FROM {archive} ..."
import { DuckDBInstance } from "@duckdb/node-api";

const [dataDir, query] = process.argv.slice(2);
if (!dataDir || !query) {
  console.error('usage: node duckdb_query.mjs DATA_DIR "SELECT ... FROM {archive}"');
  process.exit(2);
}
const glob = `${dataDir.replace(/\/$/, "")}/archive/**/*.parquet`.replaceAll("'", "''");
const source = `read_parquet('${glob}', hive_partitioning = true, union_by_name = true)`;
const instance = await DuckDBInstance.create(":memory:");
const conn = await instance.connect();
const rows = (await conn.runAndReadAll(query.replaceAll("{archive}", source))).getRowObjectsJson();
console.log(JSON.stringify(rows));
