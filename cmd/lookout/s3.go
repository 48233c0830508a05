package main

import (
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	"github.com/lookout-ml/lookout/services/archive"
)

// configureS3Reads points s3:// paths (replay, drift) at archive.s3's
// endpoint, region and credentials file, when the file has that section;
// otherwise the AWS environment variables decide (see
// parquetarchive.ConfigureS3).
func configureS3Reads(cfg Config) {
	if s3 := sectionOf[archive.Config](cfg, archive.Component).S3; s3 != nil {
		parquetarchive.ConfigureS3(*s3)
	}
}
