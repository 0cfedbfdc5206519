// Package redact makes a bundle fit to leave the organisation without
// changing what the analysis finds in it.
//
// A Policy says which attribute keys keep their values, which are replaced
// and how (a pseudonym of a kind, a mask, a parse of a URL, a storage key,
// an address, ...), and which value patterns are replaced anywhere in free
// text. A pseudonym is the kind's prefix and the first hex digits of
// HMAC-SHA256(key, value): the same value gets the same token in every
// record, file and run with the same key, so grouping, edges, paths and
// percentiles are unchanged. Trace, span and parent ids, times, kinds,
// status codes, service.name, route templates, RPC methods, verbs, resource
// types and storage key prefixes are never changed.
//
// The mapping from tokens back to values is written only to a file the
// user keeps (MappingFile); the bundle's manifest gets a Report that
// counts what was replaced and names no original value.
package redact
