package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// maxDepth bounds the nesting of a message, so that a hostile one cannot
// exhaust the stack.
const maxDepth = 64

// scanner validates JSON and finds the members of objects without building
// values: ingest reads each field once, in place, which is several times
// faster than encoding/json's reflection. It accepts the NaN, Infinity and
// -Infinity literals that some encoders write, so that they are reported as
// non-finite numbers in their field rather than as broken JSON.
type scanner struct {
	b []byte
	i int
}

var errEnd = errors.New("unexpected end of input")

func (s *scanner) fail(format string, args ...any) error {
	if s.i >= len(s.b) {
		return errEnd
	}
	return fmt.Errorf("at offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eachMember walks the object in data, calling fn with each key (quoted,
// as it appears; see unquote) and the raw bytes of its value. It fails on anything that is not one valid JSON
// object (trailing bytes included).
func eachMember(data []byte, fn func(key, raw []byte)) error {
	s := scanner{b: data}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		if s.i >= len(s.b) {
			return errEnd
		}
		return fmt.Errorf("want an object, got %s", describe(s.b[s.i:]))
	}
	if err := s.object(0, fn); err != nil {
		return err
	}
	s.skipSpace()
	if s.i != len(s.b) {
		return s.fail("unexpected %q after the object", s.b[s.i])
	}
	return nil
}

// object scans an object starting at '{'.
func (s *scanner) object(depth int, fn func(key, raw []byte)) error {
	if depth > maxDepth {
		return s.fail("nested more than %d levels", maxDepth)
	}
	s.i++ // '{'
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.fail("want a member name")
		}
		start := s.i
		if err := s.str(); err != nil {
			return err
		}
		key := s.b[start:s.i]
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail("want ':' after a member name")
		}
		s.i++
		raw, err := s.value(depth + 1)
		if err != nil {
			return err
		}
		if fn != nil {
			fn(key, raw)
		}
		s.skipSpace()
		if s.i >= len(s.b) {
			return errEnd
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

// value scans one value and returns its bytes.
func (s *scanner) value(depth int) ([]byte, error) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return nil, errEnd
	}
	start := s.i
	var err error
	switch c := s.b[s.i]; {
	case c == '"':
		err = s.str()
	case c == '{':
		err = s.object(depth, nil)
	case c == '[':
		err = s.array(depth)
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	case c == 'N':
		err = s.literal("NaN")
	case c == 'I':
		err = s.literal("Infinity")
	case c == '-' && s.i+1 < len(s.b) && s.b[s.i+1] == 'I':
		err = s.literal("-Infinity")
	case c == '-' || (c >= '0' && c <= '9'):
		err = s.number()
	default:
		err = s.fail("unexpected %q", c)
	}
	if err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return s.fail("nested more than %d levels", maxDepth)
	}
	s.i++ // '['
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if _, err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.b) {
			return errEnd
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.i += len(word)
	return nil
}

// str scans a string starting at '"'. The input is known to be UTF-8.
func (s *scanner) str() error {
	s.i++
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return errEnd
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 || !isHex(s.b[s.i+1]) || !isHex(s.b[s.i+2]) || !isHex(s.b[s.i+3]) || !isHex(s.b[s.i+4]) {
					return s.fail("invalid \\u escape")
				}
				s.i += 5
			default:
				return s.fail("invalid escape")
			}
		case c < 0x20:
			return s.fail("control character in a string")
		default:
			s.i++
		}
	}
	return errEnd
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return s.fail("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	return nil
}

// unquote returns the text of a scanned (so valid) JSON string.
func unquote(raw []byte) string {
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' {
			var out string
			_ = json.Unmarshal(raw, &out) // valid: scanned before
			return out
		}
	}
	return string(body)
}

// eachElement walks the array in raw (one JSON value, as eachMember hands
// it out), calling fn with the raw bytes of each element.
func eachElement(raw []byte, fn func(elem []byte)) error {
	s := scanner{b: raw}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return fmt.Errorf("want an array, got %s", describe(s.b[s.i:]))
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		return nil
	}
	for {
		v, err := s.value(1)
		if err != nil {
			return err
		}
		fn(v)
		s.skipSpace()
		if s.i >= len(s.b) {
			return errEnd
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}
