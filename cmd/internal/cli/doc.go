// Package cli is trace-capture's command line: the cobra commands, their
// flags, the streams they write to and the one table that maps errors to
// exit codes. Everything else lives in the library packages (capture,
// receiver, analyze, report); a command only turns flags into their Options,
// calls them and prints what they return.
package cli
