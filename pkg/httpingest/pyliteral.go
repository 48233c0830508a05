package httpingest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// member is one key and value of an object, in the order it was sent:
// BentoML's schema order decides which prediction column comes first.
type member struct {
	key string
	val any
}

// object is a decoded dict or OTLP kvlist, in order.
type object []member

// get returns the value of key and whether it is there.
func (o object) get(key string) (any, bool) {
	for _, m := range o {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

// maxLiteralDepth bounds nesting, so a hostile body cannot exhaust the stack.
const maxLiteralDepth = 64

// parsePyDict parses the str() of a Python dict, as older OpenTelemetry
// SDKs send a logged dict: str, int, float (with inf and nan), bool,
// None, nested dicts, lists and tuples, and the numpy scalar reprs that
// numpy 2 prints (np.float64(0.5)). Values come back as string, float64,
// bool, nil, object and []any. It never evaluates anything and never
// panics; anything else is an error naming its offset.
func parsePyDict(s string) (object, error) {
	p := pyParser{s: s}
	p.space()
	if p.peek() != '{' {
		return nil, p.errorf("not a dict")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errorf("unexpected text after the dict")
	}
	return v.(object), nil
}

type pyParser struct {
	s string
	i int
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("python literal at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, p.errorf("nested deeper than %d", maxLiteralDepth)
	}
	p.space()
	switch c := p.peek(); {
	case c == '{':
		return p.dict(depth)
	case c == '[':
		return p.list(depth, ']')
	case c == '(':
		return p.list(depth, ')')
	case c == '\'' || c == '"':
		return p.str()
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	case isIdentStart(c):
		return p.name(depth)
	case c == 0:
		return nil, p.errorf("unexpected end")
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *pyParser) dict(depth int) (any, error) {
	p.i++ // {
	obj := object{}
	for {
		p.space()
		if p.peek() == '}' {
			p.i++
			return obj, nil
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key, ok := keyString(k)
		if !ok {
			return nil, p.errorf("a dict key must be a string, number, bool or None")
		}
		p.space()
		if p.peek() != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj = append(obj, member{key: key, val: v})
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

// keyString turns a scalar dict key into the column name str() shows.
func keyString(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, true
	case float64:
		return strconv.FormatFloat(k, 'g', -1, 64), true
	case bool:
		if k {
			return "True", true
		}
		return "False", true
	case nil:
		return "None", true
	}
	return "", false
}

func (p *pyParser) list(depth int, end byte) (any, error) {
	p.i++ // [ or (
	out := []any{}
	for {
		p.space()
		if p.peek() == end {
			p.i++
			return out, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case end:
		default:
			return nil, p.errorf("expected ',' or %q", end)
		}
	}
}

// str reads a quoted string with Python's escapes; repr() only writes
// \\, \', \", \n, \r, \t, \xNN, \uNNNN and \UNNNNNNNN, and the others are
// accepted too. A byte string (b'...') is not a dict value repr() of a
// logged column produces, and is refused by name.
func (p *pyParser) str() (any, error) {
	quote := p.s[p.i]
	p.i++
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return nil, p.errorf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == quote:
			p.i++
			return b.String(), nil
		case c == '\n':
			return nil, p.errorf("newline inside a string")
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		p.i++ // backslash
		if p.i >= len(p.s) {
			return nil, p.errorf("unterminated escape")
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '0':
			b.WriteByte(0)
		case '\n':
			// a line continuation
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if p.i+n > len(p.s) {
				return nil, p.errorf("short \\%c escape", e)
			}
			r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
			if err != nil || r > utf8.MaxRune {
				return nil, p.errorf("bad \\%c escape", e)
			}
			p.i += n
			b.WriteRune(rune(r))
		default:
			// Python keeps an unknown escape as written.
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
}

func (p *pyParser) number() (any, error) {
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '_' ||
			((c == '-' || c == '+') && (p.i == start || p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E')) {
			p.i++
			continue
		}
		break
	}
	text := p.s[start:p.i]
	sign := 1.0
	switch {
	case strings.HasPrefix(text, "-"):
		sign, text = -1, text[1:]
	case strings.HasPrefix(text, "+"):
		text = text[1:]
	}
	// -inf and -nan: a sign before a name.
	if text == "" && isIdentStart(p.peek()) {
		v, err := p.name(0)
		if err != nil {
			return nil, err
		}
		f, ok := v.(float64)
		if !ok {
			return nil, p.errorf("a sign before a name that is not a number")
		}
		return sign * f, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
			return sign * f, nil // ±Inf or 0: what float() of it gives
		}
		return nil, p.errorf("bad number %q", p.s[start:p.i])
	}
	return sign * f, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// name reads True, False, None, inf, nan, or a numpy scalar repr: a
// dotted name called with one literal (np.float64(0.5), np.str_('a')),
// or np.True_ / np.False_.
func (p *pyParser) name(depth int) (any, error) {
	start := p.i
	for p.i < len(p.s) && (isIdentStart(p.s[p.i]) || p.s[p.i] == '.' || (p.s[p.i] >= '0' && p.s[p.i] <= '9')) {
		p.i++
	}
	word := p.s[start:p.i]
	switch word {
	case "True", "np.True_", "numpy.True_":
		return true, nil
	case "False", "np.False_", "numpy.False_":
		return false, nil
	case "None":
		return nil, nil
	case "inf":
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	if !(strings.HasPrefix(word, "np.") || strings.HasPrefix(word, "numpy.")) || p.peek() != '(' {
		return nil, p.errorf("unknown name %q", word)
	}
	p.i++ // (
	v, err := p.value(depth + 1)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.peek() != ')' {
		return nil, p.errorf("expected ')' after %s(", word)
	}
	p.i++
	switch v.(type) {
	case string, float64, bool:
		return v, nil
	}
	return nil, p.errorf("%s() of something other than a scalar", word)
}
