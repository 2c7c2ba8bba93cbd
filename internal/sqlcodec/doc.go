// Package sqlcodec holds the column encodings that the SQLite and PostgreSQL
// stores share, so that both write the same text for the same value and a
// migration between them copies it as it is.
//
// It must never decide anything (validation of what is stored belongs to the
// root package) and never import a database driver.
package sqlcodec
