// Package journal keeps, on the node, the original bytes of every file that trace-capture changes,
// written and fsynced before the change, and puts them back.
//
// A Record holds the files of one change set (one component on one node). Restoring a record is
// idempotent: a file that already has its original bytes is left as it is, a file that trace-capture
// created is removed, and a file that someone else changed in the meantime is reported as a conflict
// and left alone (unless forced). A file is dropped from its record only after its original state has
// been verified by checksum; a record whose files are all verified is deleted.
//
// Paths in records are paths on the node. Every file operation takes a host root (for example
// "/host" in a pod that mounts the node's root file system, or "/" on the node itself); absolute
// symbolic links are resolved inside that root.
package journal
