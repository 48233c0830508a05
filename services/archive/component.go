package archive

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the archive service: section `archive` of the
// configuration file. It keeps its journal in the data folder, so it runs
// once per folder.
var Component = service.NewComponent("archive", DefaultConfig, New)
