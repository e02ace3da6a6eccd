package procproto_test

import (
	"os"
	"strings"

	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// A process is an op table: the loop does framing, ids, the envelope, the ready line and the
// error shape. One worker answers in request order (what the prover uses); the verifier runs
// GOMAXPROCS workers and its answers may come back out of order.
func Example() {
	type addReq struct {
		procproto.Envelope
		A, B *int
	}
	srv := &procproto.Server{
		Process: "calculator",
		Workers: 1,
		MaxLine: 1 << 10,
		Ops: map[string]procproto.Handler{
			"add": func(r *procproto.Request) (any, error) {
				var req addReq
				if err := r.Decode(&req); err != nil {
					return nil, err
				}
				if req.A == nil || req.B == nil {
					return nil, procproto.Errorf("BAD_OPERANDS", "A", "A and B are required")
				}
				return map[string]int{"sum": *req.A + *req.B}, nil
			},
		},
	}
	in := strings.Join([]string{
		`{"id":1,"op":"add","A":2,"B":3}`,
		`{"id":"two","op":"add","A":2}`,
		`{"id":3,"op":"add","A":2,"B":3,"C":4}`,
		`{"id":4,"op":"mul"}`,
		`not json`,
		`{"id":5,"op":"ping"}`,
	}, "\n")
	if err := srv.Serve(strings.NewReader(in), os.Stdout); err != nil {
		panic(err)
	}
	// Output:
	// {"id":null,"ok":true,"event":"ready","result":{"max_line":1024,"ops":["add","ping"],"process":"calculator","protocol":2,"workers":1}}
	// {"id":1,"ok":true,"result":{"sum":5}}
	// {"id":"two","ok":false,"error":{"code":"BAD_OPERANDS","field":"A","message":"A and B are required"}}
	// {"id":3,"ok":false,"error":{"code":"MALFORMED","field":"C","message":"json: unknown field \"C\""}}
	// {"id":4,"ok":false,"error":{"code":"MALFORMED","field":"op","message":"unknown op \"mul\" (ops: add, ping)"}}
	// {"id":null,"ok":false,"error":{"code":"MALFORMED","field":"","message":"request is not a JSON object: invalid character 'o' in literal null (expecting 'u')"}}
	// {"id":5,"ok":true,"result":{"pong":true}}
}
