package archive

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// journal records which stream sequences each archive file holds, so that
// messages redelivered after a crash (written, but not yet acknowledged)
// are acknowledged without being written twice.
//
// It is a file of JSON lines in <data>/archive-state: a header naming the
// stream (and when it was created, so a recreated stream starts afresh)
// and the consumer's acknowledgement floor at the last compaction, then
// one entry per file. An entry is appended and synced before its file is
// renamed to its final name, so after a crash an entry whose file exists
// is committed, and one whose file is absent never happened.
type journal struct {
	path    string
	f       *os.File
	header  journalHeader
	entries []*journalEntry
}

type journalHeader struct {
	Stream  string `json:"stream"`
	Created string `json:"created"`
	// Floor: every sequence up to it was acknowledged.
	Floor uint64 `json:"floor"`
}

type journalEntry struct {
	File string `json:"file"`
	Seqs seqSet `json:"seqs"`
}

// openJournal reads the journal at path (a missing file is an empty
// journal), keeps the entries whose file exists (exists is asked with the
// entry's key, relative to the archive root) and that hold a
// sequence above the floor, and rewrites it. A torn last line, from a
// crash in the middle of an append, is dropped. A journal of another
// stream, or of an earlier stream of the same name, is started afresh.
func openJournal(path string, exists func(file string) (bool, error), stream journalHeader) (*journal, error) {
	j := &journal{path: path, header: stream}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if i == 0 {
			var h journalHeader
			if err := json.Unmarshal(line, &h); err != nil {
				return nil, fmt.Errorf("journal %s: header: %w", path, err)
			}
			if h.Stream != stream.Stream || h.Created != stream.Created {
				break // another stream: nothing here applies
			}
			j.header.Floor = max(j.header.Floor, h.Floor)
			continue
		}
		e := &journalEntry{}
		if err := json.Unmarshal(line, e); err != nil {
			if i == len(lines)-1 || (i == len(lines)-2 && len(lines[len(lines)-1]) == 0) {
				break // torn last append
			}
			return nil, fmt.Errorf("journal %s: line %d: %w", path, i+1, err)
		}
		ok, err := exists(e.File)
		if err != nil {
			return nil, fmt.Errorf("journal %s: %w", path, err)
		}
		if !ok {
			continue // crashed before the rename: the rows were not acknowledged
		}
		j.entries = append(j.entries, e)
	}
	if err := j.compact(j.header.Floor); err != nil {
		return nil, err
	}
	return j, nil
}

// committed reports whether seq is in a file of the journal.
func (j *journal) committed(seq uint64) bool {
	for _, e := range j.entries {
		if e.Seqs.contains(seq) {
			return true
		}
	}
	return false
}

// maxSeq returns the largest sequence in the journal.
func (j *journal) maxSeq() uint64 {
	var m uint64
	for _, e := range j.entries {
		m = max(m, e.Seqs.max())
	}
	return m
}

// append records that file (relative to the archive root) holds seqs, and
// syncs the journal.
func (j *journal) append(file string, seqs seqSet) (*journalEntry, error) {
	e := &journalEntry{File: file, Seqs: seqs}
	line, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return nil, fmt.Errorf("journal: sync: %w", err)
	}
	j.entries = append(j.entries, e)
	return e, nil
}

// forget drops an entry from memory whose file was not renamed; on disk it
// stays until the next compaction, harmless since its file is absent.
func (j *journal) forget(e *journalEntry) {
	for i, x := range j.entries {
		if x == e {
			j.entries = append(j.entries[:i], j.entries[i+1:]...)
			return
		}
	}
}

// compact drops the entries whose every sequence is at or below floor
// (acknowledged: never delivered again) and rewrites the journal through a
// synced temporary file.
func (j *journal) compact(floor uint64) error {
	j.header.Floor = max(j.header.Floor, floor)
	kept := j.entries[:0]
	for _, e := range j.entries {
		if e.Seqs.max() > j.header.Floor {
			kept = append(kept, e)
		}
	}
	j.entries = kept
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	tmp := j.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	err = enc.Encode(j.header)
	for _, e := range j.entries {
		if err == nil {
			err = enc.Encode(e)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	if j.f != nil {
		j.f.Close()
	}
	// f now is the journal, positioned at its end for appends.
	j.f = f
	return nil
}

// close closes the journal file.
func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	return j.f.Close()
}
