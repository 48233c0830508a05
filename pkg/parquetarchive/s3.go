package parquetarchive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/lookout-ml/lookout/pkg/event"
)

// S3Config is where an archive in S3-compatible object storage lives: YAML
// `archive.s3`. Credentials never sit here: they come from the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or from a
// shared credentials file (CredentialsFile, else AWS_SHARED_CREDENTIALS_FILE
// or ~/.aws/credentials; profile AWS_PROFILE, else "default").
type S3Config struct {
	// Endpoint is the server's URL, http://host:port or https://host;
	// buckets are addressed path-style on it. Empty: AWS S3.
	Endpoint string `yaml:"endpoint"`
	// Bucket must exist; Lookout does not create it.
	Bucket string `yaml:"bucket"`
	// Prefix goes before every key: <prefix>/model=<m>/date=<d>/<file>.
	Prefix string `yaml:"prefix"`
	// Region signs the requests (default us-east-1).
	Region string `yaml:"region"`
	// CredentialsFile is a shared credentials file (INI, as the AWS CLI
	// writes); when set it is tried before the environment.
	CredentialsFile string `yaml:"credentials_file"`
}

// Enabled reports whether an S3 archive is configured.
func (c *S3Config) Enabled() bool { return c != nil && c.Bucket != "" }

// Validate checks the settings without talking to the server. Each error
// starts with its key inside the `s3` section.
func (c S3Config) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		if _, _, err := parseEndpoint(c.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("endpoint: %w", err))
		}
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket: must be set"))
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("bucket: %q: %w", c.Bucket, err))
	}
	if c.CredentialsFile != "" {
		if _, err := os.Stat(c.CredentialsFile); err != nil {
			errs = append(errs, fmt.Errorf("credentials_file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// parseEndpoint returns the host[:port] and whether to use TLS.
func parseEndpoint(endpoint string) (host string, secure bool, err error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("%q: want http://host:port or https://host", endpoint)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("%q: want a server URL without a path", endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

func (c S3Config) region() string {
	if c.Region != "" {
		return c.Region
	}
	return "us-east-1"
}

func (c S3Config) prefix() string { return strings.Trim(c.Prefix, "/") }

// newClient returns a client for c's endpoint. It does not connect.
func (c S3Config) newClient() (*minio.Client, error) {
	host, secure := "s3.amazonaws.com", true
	lookup := minio.BucketLookupAuto
	if c.Endpoint != "" {
		var err error
		if host, secure, err = parseEndpoint(c.Endpoint); err != nil {
			return nil, fmt.Errorf("archive.s3.endpoint: %w", err)
		}
		// Custom servers (MinIO, Ceph, SeaweedFS, ...) rarely have the
		// wildcard DNS that virtual-hosted buckets need.
		lookup = minio.BucketLookupPath
	}
	env := &credentials.EnvAWS{}
	file := &credentials.FileAWSCredentials{Filename: c.CredentialsFile}
	providers := []credentials.Provider{env, file}
	if c.CredentialsFile != "" {
		providers = []credentials.Provider{file, env}
	}
	cl, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewChainCredentials(providers),
		Secure:       secure,
		Region:       c.region(),
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("archive.s3: %w", err)
	}
	return cl, nil
}

// S3 is a Store in an S3 bucket, under a prefix. A file is encoded to a
// temporary file on local disk and then sent with one PUT (multipart above
// 16 MiB), so memory stays bounded and an object is complete or absent.
type S3 struct {
	cfg     S3Config
	client  *minio.Client
	tempDir string
}

var _ Store = (*S3)(nil)

// NewS3 returns the S3 store of cfg; files are staged in tempDir (created
// when missing). It does not connect: Check does.
func NewS3(cfg S3Config, tempDir string) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("archive.s3: %w", err)
	}
	cl, err := cfg.newClient()
	if err != nil {
		return nil, err
	}
	return &S3{cfg: cfg, client: cl, tempDir: tempDir}, nil
}

// Check asks the server whether the bucket exists and may be read, so that
// a wrong endpoint, bucket or credentials stop Lookout at start. Its errors
// name the key at fault.
func (s *S3) Check(ctx context.Context) error {
	return checkBucket(ctx, s.client, s.cfg)
}

func checkBucket(ctx context.Context, cl *minio.Client, cfg S3Config) error {
	ok, err := cl.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		resp := minio.ToErrorResponse(err)
		switch {
		case resp.StatusCode == http.StatusForbidden || resp.Code == "AccessDenied" ||
			resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
			return fmt.Errorf("archive.s3.bucket: %q at %s: access denied (check the credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or archive.s3.credentials_file): %s",
				cfg.Bucket, endpointName(cfg), resp.Code)
		case resp.StatusCode != 0:
			return fmt.Errorf("archive.s3.bucket: %q at %s: %w", cfg.Bucket, endpointName(cfg), err)
		}
		return fmt.Errorf("archive.s3.endpoint: %s: %w", endpointName(cfg), err)
	}
	if !ok {
		return fmt.Errorf("archive.s3.bucket: %q does not exist at %s (Lookout does not create buckets)", cfg.Bucket, endpointName(cfg))
	}
	return nil
}

func endpointName(cfg S3Config) string {
	if cfg.Endpoint == "" {
		return "AWS S3"
	}
	return cfg.Endpoint
}

func (s *S3) objectKey(key string) string {
	if p := s.cfg.prefix(); p != "" {
		return p + "/" + key
	}
	return key
}

// Location returns s3://bucket/prefix.
func (s *S3) Location() string { return s.cfg.Location() }

// Location returns s3://bucket/prefix, where an archive with c keeps its
// objects.
func (c S3Config) Location() string {
	return strings.TrimSuffix("s3://"+c.Bucket+"/"+c.prefix(), "/")
}

// Exists asks for the object's metadata.
func (s *S3) Exists(ctx context.Context, key string) (bool, error) {
	return statExists(ctx, s.client, s.cfg.Bucket, s.objectKey(key))
}

func statExists(ctx context.Context, cl *minio.Client, bucket, key string) (bool, error) {
	_, err := cl.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode == http.StatusNotFound || resp.Code == "NoSuchKey" {
		return false, nil
	}
	return false, fmt.Errorf("archive: s3://%s/%s: %w", bucket, key, err)
}

// Write encodes rows to a temporary file, runs opts.BeforeRename and puts
// the object. It refuses a key that exists.
func (s *S3) Write(ctx context.Context, key string, rows []*event.Prediction, opts WriteOptions) (Stats, error) {
	name := "s3://" + s.cfg.Bucket + "/" + s.objectKey(key)
	if ok, err := s.Exists(ctx, key); err != nil {
		return Stats{}, err
	} else if ok {
		return Stats{}, fmt.Errorf("archive write: %s: %w", name, fs.ErrExist)
	}
	if err := os.MkdirAll(s.tempDir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("archive write: %w", err)
	}
	tmp, err := os.CreateTemp(s.tempDir, TempPrefix+path.Base(key)+"-*")
	if err != nil {
		return Stats{}, fmt.Errorf("archive write: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	stats, err := Encode(bw, rows)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return stats, fmt.Errorf("archive write %s: %w", name, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return stats, fmt.Errorf("archive write %s: %w", name, err)
	}
	if opts.BeforeRename != nil {
		if err := opts.BeforeRename(); err != nil {
			return stats, fmt.Errorf("archive write %s: %w", name, err)
		}
	}
	_, err = s.client.PutObject(ctx, s.cfg.Bucket, s.objectKey(key), tmp, stats.Bytes, minio.PutObjectOptions{
		ContentType: "application/vnd.apache.parquet",
	})
	if err != nil {
		return stats, fmt.Errorf("archive write %s: %w", name, err)
	}
	return stats, nil
}

// Clean removes staged files a crash left in the temporary folder.
func (s *S3) Clean(context.Context) (int, error) {
	entries, err := os.ReadDir(s.tempDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("archive clean: %w", err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			if err := os.Remove(filepath.Join(s.tempDir, e.Name())); err != nil {
				return n, fmt.Errorf("archive clean: %w", err)
			}
			n++
		}
	}
	return n, nil
}

// readS3 holds the settings s3:// paths are read with.
var readS3 struct {
	mu      sync.Mutex
	cfg     S3Config
	clients map[string]*minio.Client
}

// ConfigureS3 sets the endpoint, region and credentials file that s3://
// paths are read with (the bucket comes from each path). Unset, the
// endpoint is AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3, and the
// region AWS_REGION, else us-east-1. Commands call it once with
// archive.s3 from the configuration file.
func ConfigureS3(cfg S3Config) {
	readS3.mu.Lock()
	defer readS3.mu.Unlock()
	readS3.cfg = cfg
	readS3.clients = nil
}

// readClient returns the client for bucket, and the settings it uses.
func readClient(bucket string) (*minio.Client, S3Config, error) {
	readS3.mu.Lock()
	defer readS3.mu.Unlock()
	cfg := readS3.cfg
	cfg.Bucket, cfg.Prefix = bucket, ""
	if cfg.Endpoint == "" {
		cfg.Endpoint = cmpOr(os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"))
	}
	if cfg.Region == "" {
		cfg.Region = cmpOr(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	}
	if cl := readS3.clients[bucket]; cl != nil {
		return cl, cfg, nil
	}
	cl, err := cfg.newClient()
	if err != nil {
		return nil, cfg, err
	}
	if readS3.clients == nil {
		readS3.clients = make(map[string]*minio.Client)
	}
	readS3.clients[bucket] = cl
	return cl, cfg, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// splitS3 splits s3://bucket/key.
func splitS3(p string) (bucket, key string, err error) {
	rest := strings.TrimPrefix(p, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%s: want s3://bucket/prefix", p)
	}
	return bucket, key, nil
}

// expandS3 lists the Parquet objects at or under an s3:// path, sorted.
// A path ending in .parquet that names an object is kept as it is. A
// bucket that does not exist, or a prefix without Parquet objects, is an
// error.
func expandS3(ctx context.Context, p string) ([]string, error) {
	bucket, key, err := splitS3(p)
	if err != nil {
		return nil, fmt.Errorf("archive paths: %w", err)
	}
	cl, cfg, err := readClient(bucket)
	if err != nil {
		return nil, fmt.Errorf("archive paths: %s: %w", p, err)
	}
	if strings.HasSuffix(key, ".parquet") {
		ok, err := statExists(ctx, cl, bucket, key)
		if err != nil {
			return nil, fmt.Errorf("archive paths: %w", err)
		}
		if ok {
			return []string{p}, nil
		}
	}
	prefix := strings.Trim(key, "/")
	if prefix != "" {
		prefix += "/"
	}
	var out []string
	for obj := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			if minio.ToErrorResponse(obj.Err).Code == "NoSuchBucket" {
				return nil, fmt.Errorf("archive paths: %s: bucket %q does not exist at %s", p, bucket, endpointName(cfg))
			}
			return nil, fmt.Errorf("archive paths: %s: %w", p, obj.Err)
		}
		name := path.Base(obj.Key)
		if strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, TempPrefix) {
			out = append(out, "s3://"+bucket+"/"+obj.Key)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("archive paths: %s: no Parquet objects there (at %s)", p, endpointName(cfg))
	}
	slices.Sort(out)
	return out, nil
}

// s3Object reads one object with a ranged GET per ReadAt, pinned to the
// ETag it had when opened, so a replaced object fails the read rather than
// mixing two versions.
type s3Object struct {
	ctx    context.Context
	client *minio.Client
	bucket string
	key    string
	size   int64
	etag   string
}

func openS3Object(ctx context.Context, p string) (Object, error) {
	bucket, key, err := splitS3(p)
	if err != nil {
		return nil, &FileError{Path: p, Err: err}
	}
	cl, _, err := readClient(bucket)
	if err != nil {
		return nil, &FileError{Path: p, Err: err}
	}
	info, err := cl.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, &FileError{Path: p, Err: err}
	}
	return &s3Object{ctx: ctx, client: cl, bucket: bucket, key: key, size: info.Size, etag: info.ETag}, nil
}

func (o *s3Object) Size() int64 { return o.size }

func (o *s3Object) Close() error { return nil }

func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	want := p
	if rest := o.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if len(want) == 0 {
		return 0, nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+int64(len(want))-1); err != nil {
		return 0, err
	}
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			return 0, err
		}
	}
	obj, err := o.client.GetObject(o.ctx, o.bucket, o.key, opts)
	if err != nil {
		return 0, fmt.Errorf("s3://%s/%s: %w", o.bucket, o.key, err)
	}
	defer obj.Close()
	n, err := io.ReadFull(obj, want)
	if err != nil {
		return n, fmt.Errorf("s3://%s/%s: range %d+%d: %w", o.bucket, o.key, off, len(want), err)
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}
