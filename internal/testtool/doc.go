// Package testtool finds the external programs that tests drive (skopeo,
// oras, crane, pebble…), which .ci/run installs at pinned versions. It is
// for tests only, and never installs anything itself.
package testtool
