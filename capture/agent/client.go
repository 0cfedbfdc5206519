package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client talks to an agent's control API. The CLI builds it on an http.Client whose transport
// reaches the agent through port-forwarding.
type Client struct {
	// BaseURL is the agent's address as the HTTP client reaches it ("http://agent").
	BaseURL string
	// HTTP is the client; nil means http.DefaultClient.
	HTTP *http.Client
}

// APIError is an error answer of the agent.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent answered %d: %s", e.StatusCode, e.Message)
}

// IsConflict tells whether err is the agent refusing a request in its current phase.
func IsConflict(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusConflict
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readAPIError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxControlBody))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 64<<20))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode the agent's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ae apiError
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
		msg = ae.Error
	}
	return &APIError{StatusCode: resp.StatusCode, Message: msg}
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, PathStatus, nil, &st); err != nil {
		return Status{}, fmt.Errorf("get agent status: %w", err)
	}
	if st.APIVersion != APIVersion {
		return st, fmt.Errorf("get agent status: the agent speaks control API version %d, this CLI version %d: use the same trace-capture build for both (--image)", st.APIVersion, APIVersion)
	}
	return st, nil
}

// Plan asks for the node's plans.
func (c *Client) Plan(ctx context.Context, req PlanRequest) (NodePlan, error) {
	var np NodePlan
	if err := c.do(ctx, http.MethodPost, PathPlan, req, &np); err != nil {
		return NodePlan{}, fmt.Errorf("plan on the node: %w", err)
	}
	return np, nil
}

// Enable starts switching tracing on; follow it with Status.
func (c *Client) Enable(ctx context.Context, req EnableRequest) (Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodPost, PathEnable, req, &st); err != nil {
		return Status{}, fmt.Errorf("enable on the node: %w", err)
	}
	return st, nil
}

// SetDeadline moves the agent's dead man's switch to in from now.
func (c *Client) SetDeadline(ctx context.Context, in time.Duration) error {
	if err := c.do(ctx, http.MethodPost, PathDeadline, DeadlineRequest{In: Duration(in)}, nil); err != nil {
		return fmt.Errorf("move the agent's deadline: %w", err)
	}
	return nil
}

// Restore starts the restore; follow it with Status.
func (c *Client) Restore(ctx context.Context, req RestoreRequest) (Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodPost, PathRestore, req, &st); err != nil {
		return Status{}, fmt.Errorf("restore on the node: %w", err)
	}
	return st, nil
}

// Archive streams the span archive into w and says whether it was closed (complete) on the agent.
func (c *Client) Archive(ctx context.Context, w io.Writer) (n int64, closed bool, err error) {
	resp, err := c.get(ctx, PathArchive)
	if err != nil {
		return 0, false, fmt.Errorf("download the span archive: %w", err)
	}
	defer resp.Body.Close()
	closed, _ = strconv.ParseBool(resp.Header.Get("X-Archive-Closed"))
	n, err = io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		return n, closed, fmt.Errorf("download the span archive: %w", err)
	}
	return n, closed, nil
}

// Logs streams the agent's log into w.
func (c *Client) Logs(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.get(ctx, PathLogs)
	if err != nil {
		return 0, fmt.Errorf("download the agent's log: %w", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download the agent's log: %w", err)
	}
	return n, nil
}

func (c *Client) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}
