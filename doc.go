// Package berth is the domain of the berth registry: its vocabulary (repositories,
// manifests, blobs, uploads, digests) and its rules, written once above every adapter.
//
// This package imports the standard library only. Stores under internal/ persist what
// the rules here decide; they never decide themselves. Every refusal that reaches a
// user is an *Error with a stable Code, a Message that states the facts and a Hint
// that names the fix.
package berth
