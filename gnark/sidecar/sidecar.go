// Package sidecar is the long-lived verification service: newline-delimited JSON requests
// on stdin, one JSON response per line on stdout (see docs/sidecar.md).
package sidecar

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/sheaf-zk/sheaf/gnark/buildinfo"
	"github.com/sheaf-zk/sheaf/gnark/verify"
)

// DefaultMaxLine is the default bound on one request line (8 MiB).
const DefaultMaxLine = 8 << 20

// Options configures Serve.
type Options struct {
	MaxLine int // bytes per request line, excluding the newline
	Workers int // concurrent request handlers (default: GOMAXPROCS)
}

// Serve answers requests from in until EOF. Responses may be written out of order
// (matched by id); each is one line, written atomically.
func Serve(in io.Reader, out io.Writer, opt Options) error {
	if opt.MaxLine <= 0 {
		opt.MaxLine = DefaultMaxLine
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	bw := bufio.NewWriter(out)
	var outMu sync.Mutex
	var writeErr error
	emit := func(resp map[string]any) {
		b, err := json.Marshal(resp)
		if err != nil {
			b, _ = json.Marshal(errorResponse(resp["id"], &verify.Error{Code: verify.CodeInternal, Message: "encode response: " + err.Error()}))
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

	// gnark logs to stdout during package init (before main can silence it) when gnark/std is
	// linked in; the ready event gives clients a sync point: discard every line before it.
	ready := map[string]any{"id": json.RawMessage("null"), "ok": true, "event": "ready", "protocol": buildinfo.Protocol,
		"max_line": opt.MaxLine, "workers": opt.Workers}
	emit(ready)

	jobs := make(chan []byte, opt.Workers)
	var wg sync.WaitGroup
	for i := 0; i < opt.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for line := range jobs {
				emit(handleLine(line))
			}
		}()
	}

	br := bufio.NewReaderSize(in, 64<<10)
	var readErr error
	for {
		line, tooLarge, err := readLine(br, opt.MaxLine)
		if tooLarge {
			emit(errorResponse(nil, &verify.Error{Code: verify.CodeTooLarge, Field: "",
				Message: fmt.Sprintf("request line exceeds %d bytes", opt.MaxLine)}))
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

// readLine returns the next line without its newline. A line longer than max is consumed
// and discarded (tooLarge=true) so one oversized request cannot desynchronise the stream.
func readLine(br *bufio.Reader, max int) (line []byte, tooLarge bool, err error) {
	n := 0
	for {
		chunk, e := br.ReadSlice('\n')
		content := chunk
		if len(content) > 0 && content[len(content)-1] == '\n' {
			content = content[:len(content)-1]
		}
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

func errorResponse(id any, e *verify.Error) map[string]any {
	if id == nil {
		id = json.RawMessage("null")
	}
	return map[string]any{"id": id, "ok": false, "code": e.Code, "field": e.Field, "message": e.Message}
}

type envelope struct {
	ID json.RawMessage `json:"id"`
	Op string          `json:"op"`
}

func handleLine(line []byte) (resp map[string]any) {
	var env envelope
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		return errorResponse(nil, &verify.Error{Code: verify.CodeMalformed, Message: "request is not a JSON object: " + err.Error()})
	}
	env.ID = top["id"]
	var id any = json.RawMessage("null")
	if len(env.ID) > 0 {
		id = env.ID
	}
	if len(env.ID) == 0 || !validID(env.ID) {
		return errorResponse(id, &verify.Error{Code: verify.CodeMalformed, Field: "id", Message: "id must be a string or an integer"})
	}
	if err := json.Unmarshal(top["op"], &env.Op); err != nil || env.Op == "" {
		return errorResponse(id, &verify.Error{Code: verify.CodeMalformed, Field: "op", Message: "op must be a non-empty string"})
	}
	defer func() {
		// a bug in one request must not take the service down
		if r := recover(); r != nil {
			resp = errorResponse(id, &verify.Error{Code: verify.CodeInternal, Message: fmt.Sprintf("panic: %v", r)})
		}
	}()
	h, ok := handlers[env.Op]
	if !ok {
		return errorResponse(id, &verify.Error{Code: verify.CodeMalformed, Field: "op", Message: fmt.Sprintf("unknown op %q", env.Op)})
	}
	res, err := h(line)
	if err != nil {
		return errorResponse(id, verify.AsError(err))
	}
	res["id"] = id
	res["ok"] = true
	return res
}

func validID(raw json.RawMessage) bool {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return true
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&n) != nil {
		return false
	}
	_, err := n.Int64()
	return err == nil
}

type handler func(line []byte) (map[string]any, error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"ping":                 func([]byte) (map[string]any, error) { return map[string]any{"pong": true}, nil },
		"version":              opVersion,
		"groth16.normalize":    opGroth16Normalize,
		"groth16.verify_batch": opGroth16VerifyBatch,
		"plonk.normalize":      opPlonkNormalize,
		"groth16.parse_vk":     opGroth16ParseVK,
		"plonk.parse_vk":       opPlonkParseVK,
	}
}
