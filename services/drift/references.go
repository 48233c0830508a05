package drift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/dataset"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// ReferencesRole names the Object Store bucket of references:
// <PREFIX>_REFERENCES.
const ReferencesRole = natsbus.BucketReferences

// Object names in the references bucket.
const (
	pinnedPrefix  = "pinned."  // pinned.<model>: set with `lookout reference set`
	learnedPrefix = "learned." // learned.<model>.features, learned.<model>.version.<v>
)

// Metadata keys of a stored reference.
const (
	metaSource = "source"
	metaRows   = "rows"
	metaModel  = "model"
)

// ErrNoReference means no reference is stored under that name.
var ErrNoReference = errors.New("no reference")

// References is the JetStream Object Store bucket that holds reference
// samples (encoded driftreport.Datasets): the ones pinned by users and the ones
// the service learned, so that every drift process sees them and they
// survive restarts.
type References struct {
	obs jetstream.ObjectStore
}

// OpenReferences opens the references bucket, creating it when missing.
// It binds first, so that an admin, who may set references but not create
// buckets, can use the CLI.
func OpenReferences(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) (*References, error) {
	name := subjects.StreamName(ReferencesRole)
	var obs jetstream.ObjectStore
	err := natsbus.Retry(ctx, nil, "object store "+name, func(ctx context.Context) error {
		var err error
		if obs, err = js.ObjectStore(ctx, name); !errors.Is(err, jetstream.ErrBucketNotFound) {
			return err
		}
		replicas, err := natsbus.StreamReplicas(ctx, js, subjects)
		if err != nil {
			return err
		}
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      name,
			Description: "lookout drift references: pinned and learned reference samples",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		return err
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		obs, err = js.ObjectStore(ctx, name) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("references bucket %s: %w", name, err)
	}
	return &References{obs: obs}, nil
}

// ReferenceInfo describes a stored reference.
type ReferenceInfo struct {
	Model  string
	Source string
	Rows   int
	Bytes  uint64
	Set    time.Time
	// id changes whenever the reference is replaced.
	id string
}

func infoOf(oi *jetstream.ObjectInfo) ReferenceInfo {
	rows, _ := strconv.Atoi(oi.Metadata[metaRows])
	return ReferenceInfo{
		Model: oi.Metadata[metaModel], Source: oi.Metadata[metaSource], Rows: rows,
		Bytes: oi.Size, Set: oi.ModTime, id: oi.NUID,
	}
}

// put stores d under name.
func (r *References) put(ctx context.Context, name, model, source string, d *driftreport.Dataset) (ReferenceInfo, error) {
	var buf bytes.Buffer
	if err := dataset.Encode(&buf, d); err != nil {
		return ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, err)
	}
	oi, err := r.obs.Put(ctx, jetstream.ObjectMeta{
		Name:        name,
		Description: source,
		Metadata:    map[string]string{metaModel: model, metaSource: source, metaRows: strconv.Itoa(d.Rows)},
	}, &buf)
	if err != nil {
		return ReferenceInfo{}, fmt.Errorf("reference %s: put: %w", name, err)
	}
	return infoOf(oi), nil
}

// info returns a stored reference's description, or ErrNoReference.
func (r *References) info(ctx context.Context, name string) (ReferenceInfo, error) {
	oi, err := r.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, ErrNoReference)
	}
	if err != nil {
		return ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, err)
	}
	return infoOf(oi), nil
}

// get reads and decodes a stored reference, or returns ErrNoReference.
func (r *References) get(ctx context.Context, name string, opts driftreport.SampleOptions) (*driftreport.Dataset, ReferenceInfo, error) {
	res, err := r.obs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, ErrNoReference)
	}
	if err != nil {
		return nil, ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, err)
	}
	defer res.Close()
	oi, err := res.Info()
	if err != nil {
		return nil, ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, err)
	}
	d, err := dataset.Decode(res, opts)
	if err != nil {
		return nil, ReferenceInfo{}, fmt.Errorf("reference %s: %w", name, err)
	}
	return d, infoOf(oi), nil
}

// SetPinned stores d as the pinned reference of model; source says where
// it came from (a path). Every drift process uses it from its next window.
func (r *References) SetPinned(ctx context.Context, model, source string, d *driftreport.Dataset) (ReferenceInfo, error) {
	return r.put(ctx, pinnedPrefix+model, model, source, d)
}

// PinnedInfo describes the pinned reference of model, or returns
// ErrNoReference.
func (r *References) PinnedInfo(ctx context.Context, model string) (ReferenceInfo, error) {
	return r.info(ctx, pinnedPrefix+model)
}

// Pinned returns the pinned reference of model, or ErrNoReference.
func (r *References) Pinned(ctx context.Context, model string, opts driftreport.SampleOptions) (*driftreport.Dataset, ReferenceInfo, error) {
	return r.get(ctx, pinnedPrefix+model, opts)
}

// ClearPinned removes the pinned reference of model; the service goes back
// to its configured reference mode. It returns ErrNoReference when there
// was none.
func (r *References) ClearPinned(ctx context.Context, model string) error {
	err := r.obs.Delete(ctx, pinnedPrefix+model)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("reference %s: %w", model, ErrNoReference)
	}
	if err != nil {
		return fmt.Errorf("reference %s: delete: %w", model, err)
	}
	return nil
}

// ClearLearned forgets every reference the service learned for model, so
// that it learns them again from its next full window.
func (r *References) ClearLearned(ctx context.Context, model string) (int, error) {
	list, err := r.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("references: list: %w", err)
	}
	n := 0
	for _, oi := range list {
		if oi.Metadata[metaModel] != model || !bytes.HasPrefix([]byte(oi.Name), []byte(learnedPrefix)) {
			continue
		}
		if err := r.obs.Delete(ctx, oi.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return n, fmt.Errorf("references: delete %s: %w", oi.Name, err)
		}
		n++
	}
	return n, nil
}

func learnedFeaturesName(model string) string { return learnedPrefix + model + ".features" }

func learnedVersionName(model, version string) string {
	return learnedPrefix + model + ".version." + version
}

// names lists the stored objects whose names start with prefix.
func (r *References) names(ctx context.Context, prefix string) ([]string, error) {
	infos, err := r.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, oi := range infos {
		if strings.HasPrefix(oi.Name, prefix) {
			out = append(out, oi.Name)
		}
	}
	return out, nil
}
