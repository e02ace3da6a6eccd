package procproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type line struct {
	ID     json.RawMessage `json:"id"`
	OK     bool            `json:"ok"`
	Event  string          `json:"event"`
	Result map[string]any  `json:"result"`
	Error  *Error          `json:"error"`
}

func run(t *testing.T, s *Server, in string) (ready line, byID map[string]line, all []line) {
	t.Helper()
	var out bytes.Buffer
	if err := s.Serve(strings.NewReader(in), &out); err != nil {
		t.Fatalf("serve: %v", err)
	}
	byID = map[string]line{}
	for i, raw := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l line
		d := json.NewDecoder(strings.NewReader(raw))
		d.DisallowUnknownFields() // the envelope has exactly these fields
		if err := d.Decode(&l); err != nil {
			t.Fatalf("line %d is not an envelope: %q: %v", i, raw, err)
		}
		if l.OK == (l.Error != nil) || (l.Error != nil && l.Result != nil) {
			t.Fatalf("line %d: exactly one of result/error must be set with ok: %q", i, raw)
		}
		if i == 0 {
			ready = l
			continue
		}
		all = append(all, l)
		byID[string(l.ID)] = l
	}
	return ready, byID, all
}

func wantErr(t *testing.T, l line, code, field string) {
	t.Helper()
	if l.OK || l.Error == nil || l.Error.Code != code || l.Error.Field != field {
		t.Fatalf("want %s at %q, got %+v", code, field, l)
	}
}

func TestReadyLine(t *testing.T) {
	s := &Server{Process: "p", MaxLine: 100, Workers: 3, Info: map[string]any{"circuit_hash": "ab"},
		Ops: map[string]Handler{"x": func(*Request) (any, error) { return nil, nil }}}
	ready, _, all := run(t, s, "")
	if string(ready.ID) != "null" || !ready.OK || ready.Event != "ready" || len(all) != 0 {
		t.Fatalf("ready: %+v", ready)
	}
	r := ready.Result
	if r["process"] != "p" || r["protocol"] != float64(Version) || r["max_line"] != float64(100) ||
		r["workers"] != float64(3) || r["circuit_hash"] != "ab" || fmt.Sprint(r["ops"]) != "[ping x]" {
		t.Fatalf("ready result: %v", r)
	}
}

func TestBadLinesDoNotEndTheLoop(t *testing.T) {
	s := &Server{MaxLine: 64, Workers: 2, Ops: map[string]Handler{
		"boom":  func(*Request) (any, error) { panic("bug") },
		"plain": func(*Request) (any, error) { return nil, errors.New("disk full") },
		"wrapped": func(*Request) (any, error) {
			return nil, fmt.Errorf("context: %w", Errorf("BAD_LEAF", "leaves[1].proof", "no"))
		},
		"empty": func(*Request) (any, error) { return nil, nil },
	}}
	in := strings.Join([]string{
		"not json",
		"[1,2]",
		`{"op":"ping"}`,
		`{"id":null,"op":"ping"}`,
		`{"id":1.5,"op":"ping"}`,
		`{"id":{"x":1},"op":"ping"}`,
		`{"id":1}`,
		`{"id":2,"op":7}`,
		`{"id":3,"op":"nope"}`,
		`{"id":4,"op":"boom"}`,
		`{"id":5,"op":"plain"}`,
		`{"id":6,"op":"wrapped"}`,
		`{"id":7,"op":"empty"}`,
		`{"id":8,"op":"ping","pad":"` + strings.Repeat("x", 100) + `"}`,
		"",
		"   ",
		`{"id":"last","op":"ping"}` + "\r",
	}, "\n")
	_, byID, all := run(t, s, in)
	if len(all) != 15 {
		t.Fatalf("want 15 responses, got %d: %+v", len(all), all)
	}
	wantErr(t, byID["1"], CodeMalformed, "op")
	wantErr(t, byID["2"], CodeMalformed, "op")
	wantErr(t, byID["3"], CodeMalformed, "op")
	wantErr(t, byID["4"], CodeInternal, "")
	wantErr(t, byID["5"], CodeInternal, "")
	wantErr(t, byID["6"], "BAD_LEAF", "leaves[1].proof")
	wantErr(t, byID[`{"x":1}`], CodeMalformed, "id")
	wantErr(t, byID["1.5"], CodeMalformed, "id")
	if !byID["7"].OK || byID["7"].Result == nil || !byID[`"last"`].OK || byID[`"last"`].Result["pong"] != true {
		t.Fatalf("answers after garbage: %+v %+v", byID["7"], byID[`"last"`])
	}
	codes := map[string]int{}
	for _, l := range all {
		if l.Error != nil {
			codes[l.Error.Code+"/"+string(l.ID)]++
		}
	}
	// not JSON, [1,2], no id, null id -> MALFORMED with id null; the 100-byte line -> TOO_LARGE
	if codes["MALFORMED/null"] != 4 || codes["TOO_LARGE/null"] != 1 {
		t.Fatalf("null-id answers: %v", codes)
	}
}

func TestOutOfOrderAnswersMatchedByID(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s := &Server{Workers: 2, Ops: map[string]Handler{
		"slow": func(*Request) (any, error) { <-release; return map[string]any{"slow": true}, nil },
		"fast": func(*Request) (any, error) {
			once.Do(func() { close(release) })
			return map[string]any{"fast": true}, nil
		},
	}}
	_, _, all := run(t, s, `{"id":"s","op":"slow"}`+"\n"+`{"id":"f","op":"fast"}`+"\n")
	if len(all) != 2 || string(all[0].ID) != `"f"` || string(all[1].ID) != `"s"` {
		t.Fatalf("the fast answer must overtake the slow one: %+v", all)
	}
}

func TestOneWorkerAnswersInOrder(t *testing.T) {
	s := &Server{Workers: 1, Ops: map[string]Handler{
		"sleep": func(r *Request) (any, error) { time.Sleep(10 * time.Millisecond); return nil, nil },
	}}
	var in strings.Builder
	for i := range 5 {
		fmt.Fprintf(&in, `{"id":%d,"op":"%s"}`+"\n", i, map[bool]string{true: "sleep", false: "ping"}[i%2 == 0])
	}
	_, _, all := run(t, s, in.String())
	for i, l := range all {
		if string(l.ID) != fmt.Sprint(i) {
			t.Fatalf("answer %d has id %s", i, l.ID)
		}
	}
}

func TestDecodeNamesTheField(t *testing.T) {
	type req struct {
		Envelope
		N *int `json:"n"`
	}
	for in, field := range map[string]string{
		`{"id":1,"op":"x","n":"7"}`: "n",
		`{"id":1,"op":"x","m":1}`:   "m",
	} {
		var v req
		e := AsError((&Request{Line: []byte(in)}).Decode(&v))
		if e.Code != CodeMalformed || e.Field != field {
			t.Fatalf("%s: got %v", in, e)
		}
	}
	var v req
	if err := (&Request{Line: []byte(`{"id":1,"op":"x","n":7}`)}).Decode(&v); err != nil || *v.N != 7 || v.Op != "x" {
		t.Fatalf("good request: %v %+v", err, v)
	}
}

func TestErrorText(t *testing.T) {
	if s := Errorf("X", "f", "m %d", 1).Error(); s != "X at f: m 1" {
		t.Fatal(s)
	}
	if s := (&Error{Code: "X", Message: "m"}).Error(); s != "X: m" {
		t.Fatal(s)
	}
	if AsError(nil) != nil || AsError(errors.New("e")).Code != CodeInternal {
		t.Fatal("AsError")
	}
}
