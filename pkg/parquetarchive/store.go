package parquetarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
)

// Store is where the archive service keeps its files: a local folder
// (Folder) or a prefix of an S3 bucket (S3). Keys are slash-separated and
// relative to the archive root, as Key builds them
// (model=<model>/date=<YYYY-MM-DD>/<name>.parquet), so both hold the same
// layout.
type Store interface {
	// Write writes rows as one Parquet file at key so that a reader sees
	// the complete file or nothing. opts.BeforeRename runs once the file is
	// complete and before it is visible at key; its error stops the write.
	// An error wrapping fs.ErrExist means key already holds a file (the
	// archive never replaces one).
	Write(ctx context.Context, key string, rows []*event.Prediction, opts WriteOptions) (Stats, error)
	// Exists reports whether key holds a file.
	Exists(ctx context.Context, key string) (bool, error)
	// Clean removes what interrupted writes left behind (temporary files)
	// and returns how many it removed.
	Clean(ctx context.Context) (int, error)
	// Location names the archive root for people: a folder, or
	// s3://bucket/prefix. It never holds credentials.
	Location() string
}

// Key returns the key of an archive file relative to the root:
// model=<model>/date=<YYYY-MM-DD>/<name>.
func Key(model string, date time.Time, name string) string {
	return path.Join("model="+model, "date="+date.UTC().Format(time.DateOnly), name)
}

// Folder is a Store in a local folder; keys become paths under Root.
type Folder struct {
	Root string
}

var _ Store = (*Folder)(nil)

// Write writes the file with WriteFile.
func (f *Folder) Write(_ context.Context, key string, rows []*event.Prediction, opts WriteOptions) (Stats, error) {
	return WriteFile(f.path(key), rows, opts)
}

// Exists reports whether the file is there.
func (f *Folder) Exists(_ context.Context, key string) (bool, error) {
	_, err := os.Lstat(f.path(key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("archive: %w", err)
}

// Clean removes the temporary files of WriteFile (RemoveTemp).
func (f *Folder) Clean(context.Context) (int, error) { return RemoveTemp(f.Root) }

// Location returns the folder.
func (f *Folder) Location() string { return f.Root }

func (f *Folder) path(key string) string { return filepath.Join(f.Root, filepath.FromSlash(key)) }

// Object is an archive file opened for reading: local or in S3.
type Object interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

type localObject struct {
	*os.File
	size int64
}

func (o localObject) Size() int64 { return o.size }

// OpenObject opens a local file or an s3:// object (see ConfigureS3) for
// reading. Errors are *FileError.
func OpenObject(ctx context.Context, p string) (Object, error) {
	if IsS3(p) {
		return openS3Object(ctx, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, &FileError{Path: p, Err: err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &FileError{Path: p, Err: err}
	}
	return localObject{File: f, size: st.Size()}, nil
}

// IsS3 reports whether p is an s3://bucket/key path.
func IsS3(p string) bool { return strings.HasPrefix(p, "s3://") }
