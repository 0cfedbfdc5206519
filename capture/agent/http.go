package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const maxControlBody = 1 << 20

// Handler returns the control API. It is meant for loopback only (Run listens there); the CLI
// reaches it through port-forwarding.
//
//	GET  /v1/status    Status
//	POST /v1/plan      PlanRequest -> NodePlan (changes nothing)
//	POST /v1/enable    EnableRequest -> 202 Status (the work goes on in the background)
//	POST /v1/deadline  DeadlineRequest -> 204
//	POST /v1/restore   RestoreRequest -> 202 Status (?wait=1: 200 once done)
//	GET  /v1/archive   the span archive (a flushed snapshot until the archive is closed)
//	GET  /v1/logs      the agent's log
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("POST "+PathPlan, func(w http.ResponseWriter, r *http.Request) {
		var req PlanRequest
		if !readJSON(w, r, &req) {
			return
		}
		np, err := a.Plan(r.Context(), req)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, np)
	})
	mux.HandleFunc("POST "+PathEnable, func(w http.ResponseWriter, r *http.Request) {
		var req EnableRequest
		if !readJSON(w, r, &req) {
			return
		}
		st, err := a.Enable(req)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusAccepted, st)
	})
	mux.HandleFunc("POST "+PathDeadline, func(w http.ResponseWriter, r *http.Request) {
		var req DeadlineRequest
		if !readJSON(w, r, &req) {
			return
		}
		if err := a.SetDeadline(time.Duration(req.In)); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+PathRestore, func(w http.ResponseWriter, r *http.Request) {
		var req RestoreRequest
		if !readJSON(w, r, &req) {
			return
		}
		done, err := a.Restore(req)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		if r.URL.Query().Get("wait") != "" {
			select {
			case <-done:
			case <-r.Context().Done():
				return
			}
			writeJSON(w, http.StatusOK, a.Status())
			return
		}
		writeJSON(w, http.StatusAccepted, a.Status())
	})
	mux.HandleFunc("GET "+PathArchive, func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		closed := a.archiveClosed
		a.mu.Unlock()
		if !closed {
			if err := a.aw.Flush(); err != nil {
				writeError(w, http.StatusInternalServerError, fmt.Errorf("flush span archive: %w", err))
				return
			}
		}
		w.Header().Set("X-Archive-Closed", strconv.FormatBool(closed))
		serveFile(w, filepath.Join(a.opts.WorkDir, ArchiveFile), "application/octet-stream")
	})
	mux.HandleFunc("GET "+PathLogs, func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, filepath.Join(a.opts.WorkDir, LogFile), "text/plain; charset=utf-8")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.touch()
		mux.ServeHTTP(w, r)
	})
}

// serveFile sends the file's bytes as they are when the request arrives (it may still grow).
func serveFile(w http.ResponseWriter, path, contentType string) {
	f, err := os.Open(path)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.CopyN(w, f, fi.Size())
}

func statusOf(err error) int {
	if errors.Is(err, ErrConflict) {
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	b, _ := json.Marshal(apiError{Error: err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
