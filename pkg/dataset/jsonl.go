package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
)

// jsonlModel is the model a JSON line that names none belongs to, when
// Options.Model does not name one either: offline, every row is one model's.
const jsonlModel = "offline"

// loadJSONL reads JSON lines of prediction events, as published on
// lookout.ingest.<model> (embeddings, scores and tags are accepted; drift
// compares features, prediction and confidence). Each line is decoded and
// validated as ingest does; a rejected line is an error naming its line
// number. A blank line is skipped.
func loadJSONL(path string, d *driftreport.Dataset, opts Options, info *Info) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), event.DefaultMaxBytes+1)
	var add Adder
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		// The model filter first, so that a line of another model is
		// skipped whatever else it holds.
		var head struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(b, &head) // a malformed line is reported by the decoder
		if opts.Model != "" && head.Model != "" && head.Model != opts.Model {
			continue
		}
		subject := head.Model
		if subject == "" {
			subject = opts.Model
		}
		if subject == "" {
			subject = jsonlModel
		}
		p, reasons := event.DecodePrediction(b, event.DecodeOptions{SubjectModel: subject, Received: time.Unix(0, 0)})
		if len(reasons) > 0 {
			msgs := make([]string, len(reasons))
			for i, r := range reasons {
				msgs[i] = strings.TrimPrefix(r.GetField()+": ", ": ") + r.GetMessage()
			}
			return fmt.Errorf("%s: line %d: not a prediction event: %s", path, line, strings.Join(msgs, "; "))
		}
		if !opts.keepRole(p.GetRole()) {
			continue
		}
		add.Add(d, d, p)
		info.see(p.GetTsUnixNano())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
