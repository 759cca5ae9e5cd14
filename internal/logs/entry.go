package logs

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Message is one log entry. Line is the "log" field as stored: a complete
// line keeps its trailing newline, a piece of a long line has none.
type Message struct {
	Stream string
	Time   time.Time
	Line   []byte
}

// appendEntry appends one json-file entry, newline-terminated, in docker's
// field order so that tools reading docker's logs read berth's too.
func appendEntry(dst []byte, stream string, line []byte, t time.Time) []byte {
	dst = append(dst, `{"log":`...)
	dst = appendString(dst, line)
	dst = append(dst, `,"stream":`...)
	dst = appendString(dst, []byte(stream))
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// ASCII bytes that need no escape, as bit sets over 0-63 and 64-127: all
// but control characters, '"', '\\', and (like docker) '<', '>' and '&'.
const (
	safeLow  = ^uint64(1<<32-1) &^ (1<<'"' | 1<<'&' | 1<<'<' | 1<<'>')
	safeHigh = ^uint64(0) &^ (1 << ('\\' - 64))
)

// appendString appends s as a JSON string. As docker does, it escapes <, >
// and &, and turns invalid UTF-8 into U+FFFD.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 64 && safeLow>>c&1 != 0 || c >= 64 && safeHigh>>(c-64)&1 != 0 {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but they end lines in JavaScript.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonEntry is an entry as docker and berth write it; other fields (attrs)
// are ignored.
type jsonEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// decodeEntry parses one line of a log file. Line in the result may share
// buf, which is returned grown for reuse. ok is false for a line that is not
// an entry (a torn or corrupt write), which readers skip.
func decodeEntry(line, buf []byte) (m Message, _ []byte, ok bool) {
	if m, buf, ok := decodeFast(line, buf[:0]); ok {
		return m, buf, true
	}
	var e jsonEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return Message{}, buf, false
	}
	return Message{Stream: e.Stream, Time: e.Time, Line: []byte(e.Log)}, buf, true
}

// decodeFast reads entries in the exact shape appendEntry and docker write,
// several times faster than encoding/json; it declines anything else.
func decodeFast(line, buf []byte) (Message, []byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"log":"`))
	if !ok || !utf8.Valid(line) {
		return Message{}, buf, false
	}
	buf, rest, ok = unquote(rest, buf)
	if !ok {
		return Message{}, buf, false
	}
	var stream, ts []byte
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"stream":"`)); !ok {
		return Message{}, buf, false
	}
	if stream, rest, ok = bytes.Cut(rest, []byte(`"`)); !ok || bytes.IndexByte(stream, '\\') >= 0 {
		return Message{}, buf, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"time":"`)); !ok {
		return Message{}, buf, false
	}
	if ts, rest, ok = bytes.Cut(rest, []byte(`"`)); !ok || string(rest) != "}" {
		return Message{}, buf, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Message{}, buf, false
	}
	m := Message{Time: t, Line: buf}
	switch string(stream) { // no allocation for the usual two
	case "stdout":
		m.Stream = "stdout"
	case "stderr":
		m.Stream = "stderr"
	default:
		m.Stream = string(stream)
	}
	return m, buf, true
}

// unquote appends the JSON string that s starts with (after its opening
// quote) to buf and returns what follows its closing quote.
func unquote(s, buf []byte) ([]byte, []byte, bool) {
	for {
		i := 0
		for i < len(s) && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 {
			i++
		}
		buf = append(buf, s[:i]...)
		s = s[i:]
		if len(s) == 0 || s[0] < 0x20 {
			return buf, nil, false
		}
		if s[0] == '"' {
			return buf, s[1:], true
		}
		if len(s) < 2 {
			return buf, nil, false
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			buf = append(buf, c)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				return buf, nil, false
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					r2, ok = hex4(s[2:])
				}
				if r = utf16.DecodeRune(r, r2); ok && r != utf8.RuneError {
					s = s[6:]
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			return buf, nil, false
		}
		s = s[2:]
	}
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
