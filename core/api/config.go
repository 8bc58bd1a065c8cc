package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/config"
)

// The admin config editor (SPEC 9, docs/HTTP_API.md "Config editor"):
// administrators read hbd.yaml with its secrets masked, check an edited
// text (the validation of a reload, a unified diff) and save it, which
// writes the file atomically (the old one kept as hbd.yaml.bak) and
// reloads the daemon as SIGHUP does. In open mode there is nobody to
// trust with the file, so the editor is off.

// ConfigFile is the config file behind the editor and the reload that
// applies it: the daemon.
type ConfigFile interface {
	// ConfigPath is the file's path.
	ConfigPath() string
	// CheckConfig validates a new content of the file exactly as a
	// reload would, without applying it.
	CheckConfig(raw []byte) (*config.Config, error)
	// Reload reads the file again and applies it, as SIGHUP does.
	Reload() error
	// JournalSync writes a line to the journal (host "" for the
	// daemon) and returns once it is stored.
	JournalSync(ctx context.Context, host, msg string) error
}

// MaxConfigBody bounds a check or save request (the text is JSON-encoded
// in it, so the text itself is a little smaller): the config file's own
// limit.
const MaxConfigBody = config.MaxFileBytes

// configEditor serializes saves, so that a version compared is the
// version replaced.
type configEditor struct {
	mu sync.Mutex
}

// ConfigJSON is the answer of GET and PUT /api/0/config.
type ConfigJSON struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Text    string `json:"text"`
	// SecretKeys are the key patterns whose values are masked.
	SecretKeys []string `json:"secret_keys"`
	// Saved and Reloaded (PUT only) say what the save did; Diff is what
	// changed, secrets masked.
	Saved    bool   `json:"saved,omitempty"`
	Reloaded bool   `json:"reloaded,omitempty"`
	Diff     string `json:"diff,omitempty"`
}

// ConfigProblem is one problem of an edited config: its line (0 when
// unknown), its key (dotted path; may be empty) and what is wrong.
type ConfigProblem struct {
	Line    int    `json:"line"`
	Key     string `json:"key"`
	Message string `json:"message"`
}

// ConfigCheckJSON is the answer of POST /api/0/config/check.
type ConfigCheckJSON struct {
	Valid  bool            `json:"valid"`
	Errors []ConfigProblem `json:"errors"`
	// Diff is the unified diff from the file in force to the edited
	// text, secrets masked ("••• (changed)" where one changes).
	Diff           string   `json:"diff"`
	ChangedSecrets []string `json:"changed_secrets"`
	// Stale is true when the request named a version other than the
	// file's: a save would be refused with 409.
	Stale   bool   `json:"stale"`
	Version string `json:"version"`
}

// configRequest is the body of check and save.
type configRequest struct {
	Text    *string `json:"text"`
	Version string  `json:"version"`
}

// problemError is a save refused for a problem of the text: 422 with the
// problem's line and key beside the message.
type problemError struct {
	*echo.HTTPError
	ConfigProblem
}

func (e *problemError) Unwrap() error { return e.HTTPError }

func (s *Server) configRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/0/config", Access: Admin, Handler: s.getConfig},
		{Method: http.MethodPost, Path: "/api/0/config/check", Access: Admin, Handler: s.checkConfig},
		{Method: http.MethodPut, Path: "/api/0/config", Access: Admin, Handler: s.putConfig},
	}
}

// errOpenConfig is the editor's answer in open mode.
const errOpenConfig = "The config editor is off in open mode: no users are configured, so nobody can be trusted with the file. " +
	"To turn users on, add a `users:` entry with `admin: true` and a password_hash (`hbd hash-password`) to hbd.yaml and reload hbd (docs/USERS.md)"

// configFile returns the editor's file and its current content, or the
// error to answer.
func (s *Server) configFile(c echo.Context) (ConfigFile, []byte, error) {
	if PrincipalOf(c).Open {
		return nil, nil, Errorf(http.StatusConflict, errOpenConfig)
	}
	f := s.deps.ConfigFile
	if f == nil {
		return nil, nil, Errorf(http.StatusServiceUnavailable, "The config editor is not available: this server was started without a config file")
	}
	raw, err := config.ReadFile(f.ConfigPath())
	if err != nil {
		return nil, nil, Errorf(http.StatusInternalServerError, "Cannot read the config file: %v", err)
	}
	return f, raw, nil
}

func (s *Server) getConfig(c echo.Context) error {
	f, raw, err := s.configFile(c)
	if err != nil {
		return err
	}
	masked, err := config.MaskSecrets(raw)
	if err != nil {
		return Errorf(http.StatusInternalServerError, "The config file %s is not valid YAML (%s); fix it on the server", f.ConfigPath(), strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return c.JSON(http.StatusOK, ConfigJSON{Path: f.ConfigPath(), Version: config.Version(raw), Text: string(masked), SecretKeys: config.SecretKeys()})
}

// readConfigRequest reads a check or save body.
func readConfigRequest(c echo.Context) (configRequest, error) {
	body, err := readJSONObject(c, MaxConfigBody, fmt.Sprintf("The request is larger than %d bytes: the config text must be smaller", MaxConfigBody))
	if err != nil {
		return configRequest{}, err
	}
	var req configRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, Errorf(http.StatusBadRequest, "Invalid request body: %v (want {\"text\": \"…\", \"version\": \"…\"})", err)
	}
	if req.Text == nil {
		return req, &FieldError{HTTPError: Errorf(http.StatusBadRequest, "text is required: the whole new hbd.yaml"), Field: "text"}
	}
	if len(*req.Text) > config.MaxFileBytes {
		return req, Errorf(http.StatusRequestEntityTooLarge, "The config text is larger than %d bytes", config.MaxFileBytes)
	}
	return req, nil
}

// editResult is an edited text checked against the file in force.
type editResult struct {
	restored []byte // the text with the secrets left masked put back
	changed  []string
	cfg      *config.Config
	problem  *config.EditError
	diff     string
}

// evaluate restores the secrets of edited from current, validates the
// result as a reload would and diffs it against current, secrets masked.
// Messages never carry a secret value.
func evaluate(f ConfigFile, current, edited []byte) editResult {
	var r editResult
	maskedCur, err := config.MaskSecrets(current)
	if err != nil {
		r.problem = &config.EditError{Msg: fmt.Sprintf("the file in force is not valid YAML: %v", err)}
		return r
	}
	restored, changed, err := config.RestoreSecrets(current, edited)
	if err != nil {
		r.problem = config.AsEditError(edited, err)
		// The edited text as typed: "•••" or what its author wrote.
		r.diff = config.UnifiedDiff("hbd.yaml (in force)", "hbd.yaml (edited)", maskedCur, edited)
		return r
	}
	r.restored, r.changed = restored, changed
	if shown, err := config.MaskChanged(restored, changed); err == nil {
		r.diff = config.UnifiedDiff("hbd.yaml (in force)", "hbd.yaml (edited)", maskedCur, shown)
	}
	cfg, err := f.CheckConfig(restored)
	if err != nil {
		p := config.AsEditError(restored, err)
		p.Msg = config.ScrubSecrets(p.Msg, restored, current)
		r.problem = p
		return r
	}
	r.cfg = cfg
	return r
}

func (s *Server) checkConfig(c echo.Context) error {
	req, err := readConfigRequest(c)
	if err != nil {
		return err
	}
	f, raw, err := s.configFile(c)
	if err != nil {
		return err
	}
	r := evaluate(f, raw, []byte(*req.Text))
	out := ConfigCheckJSON{
		Valid:          r.problem == nil,
		Errors:         []ConfigProblem{},
		Diff:           r.diff,
		ChangedSecrets: r.changed,
		Version:        config.Version(raw),
	}
	if out.ChangedSecrets == nil {
		out.ChangedSecrets = []string{}
	}
	out.Stale = req.Version != "" && req.Version != out.Version
	if r.problem != nil {
		out.Errors = append(out.Errors, ConfigProblem{Line: r.problem.Line, Key: r.problem.Key, Message: r.problem.Msg})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) putConfig(c echo.Context) error {
	req, err := readConfigRequest(c)
	if err != nil {
		return err
	}
	if _, _, err := s.configFile(c); err != nil {
		return err
	}
	if req.Version == "" {
		return &FieldError{HTTPError: Errorf(http.StatusBadRequest, "version is required: the version of the file the text was edited from (GET /api/0/config)"), Field: "version"}
	}
	s.editor.mu.Lock()
	defer s.editor.mu.Unlock()
	f, raw, err := s.configFile(c)
	if err != nil {
		return err
	}
	if v := config.Version(raw); v != req.Version {
		return Errorf(http.StatusConflict, "The config file changed since it was loaded (version %s, now %s): someone saved it or edited it on the server. Load it again and redo your change", clipName(req.Version), v)
	}
	r := evaluate(f, raw, []byte(*req.Text))
	if r.problem != nil {
		p := ConfigProblem{Line: r.problem.Line, Key: r.problem.Key, Message: r.problem.Msg}
		return &problemError{HTTPError: Errorf(http.StatusUnprocessableEntity, "The config was not saved: %s", r.problem.Error()), ConfigProblem: p}
	}
	user := PrincipalOf(c).User
	path := f.ConfigPath()
	out := ConfigJSON{Path: path, SecretKeys: config.SecretKeys(), Diff: r.diff}
	if !bytes.Equal(r.restored, raw) {
		if err := config.Rewrite(path, raw, r.restored, nil); err != nil {
			return Errorf(http.StatusInternalServerError, "The config was not saved: %v", err)
		}
		out.Saved = true
		msg := fmt.Sprintf("config file %s edited in the web UI by %s (previous file: %s.bak)", path, user, path)
		if len(r.changed) > 0 {
			msg += "; secrets changed: " + strings.Join(r.changed, ", ")
		}
		if err := f.JournalSync(c.Request().Context(), "", msg); err != nil {
			s.log.Error("journal the config edit", "error", err)
		}
		s.log.Info("config file edited in the web UI", "user", user, "file", path, "secrets_changed", strings.Join(r.changed, ","))
		if err := f.Reload(); err != nil {
			return Errorf(http.StatusInternalServerError, "The config was saved to %s but the reload failed, the daemon keeps the config it had: %s (the previous file is %s.bak)", path, config.ScrubSecrets(err.Error(), r.restored, raw), path)
		}
		out.Reloaded = true
	}
	now, err := config.ReadFile(path)
	if err != nil {
		return Errorf(http.StatusInternalServerError, "Cannot read the config file: %v", err)
	}
	masked, err := config.MaskSecrets(now)
	if err != nil {
		return Errorf(http.StatusInternalServerError, "The config file is not valid YAML after the save: %v", err)
	}
	out.Version, out.Text = config.Version(now), string(masked)
	return c.JSON(http.StatusOK, out)
}
