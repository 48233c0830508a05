package httpingest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

var update = flag.Bool("update", false, "rewrite testdata/bentoml/*")

// The BentoML fixtures are shaped as bentoml/_internal/monitoring/otlp.py
// sends them through the OpenTelemetry Python SDK's OTLP/HTTP log
// exporter: one resource named "<bento_name>:<monitor_name>" (and a
// service.instance.id that BentoML forgot to make an f-string), the
// logger "bentoml_monitor_data" as scope, and INFO records whose body is
// the logged columns plus timestamp, request_id and bento_meta. Record 1
// is a kvlist body with bento_meta (current SDKs), record 2 a kvlist
// without it (meta_sample_rate < 1), record 3 the str() of the dict, as
// older SDKs send it, with a target column.
const (
	fixtureMonitor = "iris_classifier_prediction"
	fixtureVersion = "2026-11-01.abc123"
	fixtureT0      = 1795000000.25 // 2026-11-18T...
)

// pyBody is record 3's body exactly as Python's str() prints the dict.
const pyBody = `{'sepal length': 6.3, 'sepal width': 3.3, 'petal length': 6.0, 'petal width': 2.5, 'pred': 'virginica', 'label': 'virginica', 'timestamp': 1795000002.25, 'request_id': '6413930528999883198', 'bento_meta': {'bento_name': 'iris_classifier', 'bento_version': '2026-11-01.abc123', 'monitor_name': 'iris_classifier_prediction', 'schema': {'sepal length': {'name': 'sepal length', 'role': 'feature', 'type': 'numerical'}, 'sepal width': {'name': 'sepal width', 'role': 'feature', 'type': 'numerical'}, 'petal length': {'name': 'petal length', 'role': 'feature', 'type': 'numerical'}, 'petal width': {'name': 'petal width', 'role': 'feature', 'type': 'numerical'}, 'pred': {'name': 'pred', 'role': 'prediction', 'type': 'categorical'}, 'label': {'name': 'label', 'role': 'target', 'type': 'categorical'}}}}`

func bentoSchemaMap(m pcommon.Map, withTarget bool) {
	meta := m.PutEmptyMap("bento_meta")
	meta.PutStr("bento_name", "iris_classifier")
	meta.PutStr("bento_version", fixtureVersion)
	meta.PutStr("monitor_name", fixtureMonitor)
	sc := meta.PutEmptyMap("schema")
	col := func(name, role, typ string) {
		c := sc.PutEmptyMap(name)
		c.PutStr("name", name)
		c.PutStr("role", role)
		c.PutStr("type", typ)
	}
	for _, f := range []string{"sepal length", "sepal width", "petal length", "petal width"} {
		col(f, "feature", "numerical")
	}
	col("pred", "prediction", "categorical")
	if withTarget {
		col("label", "target", "categorical")
	}
}

// bentoRequest builds the fixture request.
func bentoRequest() plogotlp.ExportRequest {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr("telemetry.sdk.language", "python")
	res.PutStr("telemetry.sdk.name", "opentelemetry")
	res.PutStr("telemetry.sdk.version", "1.27.0")
	res.PutStr("service.name", "iris_classifier:"+fixtureMonitor)
	res.PutStr("service.instance.id", "{component_context.bento_version}")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("bentoml_monitor_data")
	record := func(sec float64) plog.LogRecord {
		lr := sl.LogRecords().AppendEmpty()
		t := time.Unix(0, int64(sec*1e9))
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(t.Add(time.Millisecond)))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		a := lr.Attributes()
		a.PutStr("code.filepath", "/usr/lib/python3/site-packages/bentoml/_internal/monitoring/otlp.py")
		a.PutStr("code.function", "export_data")
		a.PutInt("code.lineno", 216)
		return lr
	}
	// 1: kvlist with bento_meta, as current SDKs send it.
	b := record(fixtureT0).Body().SetEmptyMap()
	b.PutDouble("sepal length", 5.1)
	b.PutDouble("sepal width", 3.5)
	b.PutDouble("petal length", 1.4)
	b.PutDouble("petal width", 0.2)
	b.PutStr("pred", "setosa")
	b.PutDouble("timestamp", fixtureT0)
	b.PutStr("request_id", "6413930528999883196")
	bentoSchemaMap(b, true)
	// 2: kvlist without bento_meta; its schema is the one seen last.
	b = record(fixtureT0 + 1).Body().SetEmptyMap()
	b.PutDouble("sepal length", 4.9)
	b.PutDouble("sepal width", 3.0)
	b.PutDouble("petal length", 1.4)
	b.PutDouble("petal width", 0.2)
	b.PutStr("pred", "setosa")
	b.PutStr("label", "versicolor")
	b.PutDouble("timestamp", fixtureT0+1)
	b.PutStr("request_id", "6413930528999883197")
	// 3: the str() of the dict, as older SDKs send it.
	record(fixtureT0 + 2).Body().SetStr(pyBody)
	return plogotlp.NewExportRequestFromLogs(logs)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bentoml", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFixturesMatchGenerator proves the committed fixtures are what the
// generator above builds (run with -update to rewrite them).
func TestFixturesMatchGenerator(t *testing.T) {
	req := bentoRequest()
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"logs.pb": pb, "logs.json": js}
	for name, want := range files {
		path := filepath.Join("testdata", "bentoml", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got := fixture(t, name); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator; run go test -run TestFixturesMatchGenerator -update", path)
		}
	}
}
