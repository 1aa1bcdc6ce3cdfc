// Command goduration answers, one JSON line per JSON line on stdin, what Go's own
// time.ParseDuration and time.Duration.String give, so kubeboot's Python port can be
// compared with the original (tests/interop/test_go_durations.py).
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"time"
)

type request struct {
	Parse  *string `json:"parse,omitempty"`
	Format *int64  `json:"format,omitempty"`
}

type answer struct {
	Ns   *int64 `json:"ns,omitempty"`
	Err  string `json:"err,omitempty"`
	Text string `json:"text,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			panic(err)
		}
		var ans answer
		if req.Parse != nil {
			d, err := time.ParseDuration(*req.Parse)
			if err != nil {
				ans.Err = err.Error()
			} else {
				ns := int64(d)
				ans.Ns = &ns
			}
		} else if req.Format != nil {
			ans.Text = time.Duration(*req.Format).String()
		}
		if err := out.Encode(ans); err != nil {
			panic(err)
		}
	}
}
