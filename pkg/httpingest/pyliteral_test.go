package httpingest

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type pyCase struct {
	Repr string          `json:"repr"`
	JSON json.RawMessage `json:"json"`
}

func pyCases(t testing.TB) []pyCase {
	t.Helper()
	f, err := os.Open("testdata/pyliteral/cases.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []pyCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c pyCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestParsePyDictAgainstPython: each str() that Python printed
// (testdata/pyliteral/cases.py) parses to the dict Python's json module
// wrote beside it, in order.
func TestParsePyDictAgainstPython(t *testing.T) {
	for _, c := range pyCases(t) {
		got, err := parsePyDict(c.Repr)
		if err != nil {
			t.Errorf("%s: %v", c.Repr, err)
			continue
		}
		want, err := parseJSONObject(string(c.JSON))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.Repr, got, want)
		}
	}
}

// TestParsePyDictRefuses: anything that is not a literal dict is an
// error, never evaluated.
func TestParsePyDictRefuses(t *testing.T) {
	for _, s := range []string{
		"", "[1]", "{'a': 1", "{'a' 1}", "{'a': os.system('ls')}", "{'a': b'x'}",
		"{'a': 'x}", "{'a': 1} trailing", "{[1]: 2}", "{'a': np.array([1])}", strings.Repeat("{'a': ", 100) + "1" + strings.Repeat("}", 100),
	} {
		if v, err := parsePyDict(s); err == nil {
			t.Errorf("%q parsed as %#v", s, v)
		}
	}
	v, err := parsePyDict("{'p': np.float64(0.25), 'q': -inf, 'r': nan, 's': np.str_('x'), 't': np.True_}")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := v.get("p"); p != 0.25 {
		t.Errorf("np.float64(0.25) is %v", p)
	}
	if q, _ := v.get("q"); !math.IsInf(q.(float64), -1) {
		t.Errorf("-inf is %v", q)
	}
}

// pyRepr prints a parsed value as Python's repr() would (near enough to
// parse back).
func pyRepr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case float64:
		switch {
		case math.IsNaN(v):
			return "nan"
		case math.IsInf(v, 1):
			return "inf"
		case math.IsInf(v, -1):
			return "-inf"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		var b strings.Builder
		b.WriteByte('\'')
		for _, r := range v {
			switch {
			case r == '\'' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20 || r == 0x7f:
				b.WriteString(`\x` + strconv.FormatInt(int64(r)+0x100, 16)[1:])
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('\'')
		return b.String()
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = pyRepr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case object:
		parts := make([]string, len(v))
		for i, m := range v {
			parts[i] = pyRepr(m.key) + ": " + pyRepr(m.val)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	panic("unknown value")
}

// FuzzParsePyDict: no input makes the parser panic or hang, and whatever
// it accepts prints back to a literal that parses to the same value.
func FuzzParsePyDict(f *testing.F) {
	for _, c := range pyCases(f) {
		f.Add(c.Repr)
	}
	f.Add(pyBody)
	f.Add("{'a': -nan, 'b': np.int64(3), 'c': (1,), 'd': '\\U0001F600\\u00e9\\x41'}")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parsePyDict(s)
		if err != nil {
			return
		}
		again, err := parsePyDict(pyRepr(v))
		if err != nil {
			t.Fatalf("%q parsed, its repr %q does not: %v", s, pyRepr(v), err)
		}
		if pyRepr(again) != pyRepr(v) {
			t.Fatalf("%q: repr %q parses back as %q", s, pyRepr(v), pyRepr(again))
		}
	})
}
