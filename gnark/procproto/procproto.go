// Package procproto is the one protocol of sheaf-gnark's long-lived processes, the
// verification sidecar (`sheaf-gnark serve`) and the recursive prover worker
// (`sheaf-gnark aggregate serve`): newline-delimited JSON on stdin/stdout, request ids,
// one response envelope, one ready line, one error type (docs/sidecar.md).
//
//	request:  {"id": <string|integer>, "op": "<op>", ...op fields}
//	success:  {"id": <id>, "ok": true, "result": {...}}
//	failure:  {"id": <id|null>, "ok": false, "error": {"code": "<CODE>", "field": "<element>", "message": "..."}}
//	ready:    {"id": null, "ok": true, "event": "ready", "result": {"process", "protocol", "max_line", "workers", "ops", ...}}
package procproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Version is the protocol version, sent in the ready line (bumped on incompatible changes).
const Version = 2

// Codes every process may answer (each process adds its own op-level codes).
const (
	CodeMalformed = "MALFORMED" // not JSON, bad id, missing/unknown op, missing/unknown/mistyped field
	CodeTooLarge  = "TOO_LARGE" // request line over the process's max_line
	CodeInternal  = "INTERNAL"  // a bug, a panic inside one request, an uncoded error
)

// Error is a failure with a stable UPPER_SNAKE code and the offending field ("" when no
// single element is at fault). It is the only error type that crosses the process boundary.
type Error struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Message
	}
	return fmt.Sprintf("%s at %s: %s", e.Code, e.Field, e.Message)
}

// Errorf builds an *Error.
func Errorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// AsError returns the *Error in err's chain; any other error becomes INTERNAL.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// Envelope holds the fields every request carries. Embed it in an op's request struct so
// Request.Decode (which rejects unknown fields) accepts "id" and "op".
type Envelope struct {
	ID json.RawMessage `json:"id"`
	Op string          `json:"op"`
}

// Request is one parsed request line.
type Request struct {
	ID   json.RawMessage // verbatim, echoed in the response
	Op   string
	Line []byte // the whole line, for Decode
}

// Decode unmarshals the request line into v strictly: an unknown field or a wrong JSON type
// is MALFORMED naming the field. v should embed Envelope.
func (r *Request) Decode(v any) error {
	d := json.NewDecoder(bytes.NewReader(r.Line))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Errorf(CodeMalformed, te.Field, "expected JSON %s, got %s", te.Type, te.Value)
		}
		msg := err.Error()
		field := ""
		if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			field = strings.Trim(rest, `"`)
		}
		return &Error{Code: CodeMalformed, Field: field, Message: msg}
	}
	return nil
}

// Handler answers one op: a JSON-encodable result, or an error (an *Error keeps its code,
// anything else is INTERNAL).
type Handler func(*Request) (any, error)

// Server is one process's op table and limits; Serve runs the loop.
type Server struct {
	Process string             // which process this is: "verifier" (serve) or "prover" (aggregate serve)
	Ops     map[string]Handler // "ping" is built in; add "version" etc. here
	Info    map[string]any     // extra ready-line result fields (e.g. the prover's circuit)
	MaxLine int                // bytes per request line excluding the newline (default DefaultMaxLine)
	Workers int                // concurrent handlers (default GOMAXPROCS); 1 answers in request order
}

// DefaultMaxLine bounds one request line (8 MiB) unless Server.MaxLine is set.
const DefaultMaxLine = 8 << 20

type response struct {
	ID     json.RawMessage `json:"id"`
	OK     bool            `json:"ok"`
	Event  string          `json:"event,omitempty"`
	Result any             `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

var null = json.RawMessage("null")

func failure(id json.RawMessage, e *Error) response {
	if len(id) == 0 {
		id = null
	}
	return response{ID: id, Error: e}
}

// Serve writes the ready line, then answers requests from in until EOF (after answering every
// request already read). Bad input never ends the loop; only a read or write error does.
// With Workers > 1 responses may be out of order: clients match them by id. Each response is
// one line, written atomically.
func (s *Server) Serve(in io.Reader, out io.Writer) error {
	maxLine, workers := s.MaxLine, s.Workers
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ops := map[string]Handler{"ping": func(*Request) (any, error) { return map[string]bool{"pong": true}, nil }}
	for name, h := range s.Ops {
		ops[name] = h
	}
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	sort.Strings(names)

	bw := bufio.NewWriter(out)
	var outMu sync.Mutex
	var writeErr error
	emit := func(r response) {
		b, err := json.Marshal(r)
		if err != nil {
			b, _ = json.Marshal(failure(r.ID, &Error{Code: CodeInternal, Message: "encode response: " + err.Error()}))
		}
		outMu.Lock()
		defer outMu.Unlock()
		if writeErr != nil {
			return
		}
		if _, err := bw.Write(append(b, '\n')); err != nil {
			writeErr = err
			return
		}
		writeErr = bw.Flush()
	}

	ready := map[string]any{}
	for k, v := range s.Info {
		ready[k] = v
	}
	ready["process"], ready["protocol"], ready["max_line"], ready["workers"], ready["ops"] = s.Process, Version, maxLine, workers, names
	emit(response{ID: null, OK: true, Event: "ready", Result: ready})

	jobs := make(chan []byte, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for line := range jobs {
				emit(handle(ops, names, line))
			}
		}()
	}
	br := bufio.NewReaderSize(in, 64<<10)
	var readErr error
	for {
		line, tooLarge, err := readLine(br, maxLine)
		if tooLarge {
			emit(failure(nil, Errorf(CodeTooLarge, "", "request line exceeds %d bytes", maxLine)))
		} else if len(bytes.TrimSpace(line)) > 0 {
			jobs <- line
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	return writeErr
}

// readLine returns the next line without its newline (and a trailing \r). A line longer than
// max is consumed and discarded (tooLarge) so one oversized request cannot desynchronise the
// stream.
func readLine(br *bufio.Reader, max int) (line []byte, tooLarge bool, err error) {
	n := 0
	for {
		chunk, e := br.ReadSlice('\n')
		content := bytes.TrimSuffix(chunk, []byte("\n"))
		n += len(content)
		if n > max {
			tooLarge, line = true, nil
		} else {
			line = append(line, content...)
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if tooLarge {
			return nil, true, e
		}
		return bytes.TrimSuffix(line, []byte("\r")), false, e
	}
}

func handle(ops map[string]Handler, names []string, line []byte) (resp response) {
	var env struct {
		ID json.RawMessage `json:"id"`
		Op json.RawMessage `json:"op"`
	}
	if err := json.Unmarshal(line, &env); err != nil {
		return failure(nil, Errorf(CodeMalformed, "", "request is not a JSON object: %v", err))
	}
	if !validID(env.ID) {
		id := env.ID
		if len(id) == 0 || !json.Valid(id) {
			id = nil
		}
		return failure(id, Errorf(CodeMalformed, "id", "id must be a string or an integer"))
	}
	req := &Request{ID: env.ID, Line: line}
	if err := json.Unmarshal(env.Op, &req.Op); err != nil || req.Op == "" {
		return failure(req.ID, Errorf(CodeMalformed, "op", "op must be a non-empty string"))
	}
	h, ok := ops[req.Op]
	if !ok {
		return failure(req.ID, Errorf(CodeMalformed, "op", "unknown op %q (ops: %s)", req.Op, strings.Join(names, ", ")))
	}
	defer func() {
		// a bug in one request must not take the process down
		if r := recover(); r != nil {
			resp = failure(req.ID, Errorf(CodeInternal, "", "panic: %v", r))
		}
	}()
	res, err := h(req)
	if err != nil {
		return failure(req.ID, AsError(err))
	}
	if res == nil {
		res = map[string]any{}
	}
	return response{ID: req.ID, OK: true, Result: res}
}

func validID(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false // null is the ready line's id; a request id must tell its answer apart
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return true
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var n json.Number
	if d.Decode(&n) != nil {
		return false
	}
	_, err := n.Int64()
	return err == nil
}
