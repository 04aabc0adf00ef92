// Package gateway is ringstore's S3 REST API: it routes requests (path
// style and virtual-hosted style), has package auth verify them, parses
// headers and XML, streams bodies through the chunker into package blobs,
// records metadata through package index, and answers with S3's XML and
// error codes.
//
// A handler makes one call per layer and owns nothing global: every piece
// of state hangs off a Server.
package gateway
