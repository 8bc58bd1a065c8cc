package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/store"
)

// A write that failed because the database cannot be written (disk full)
// is answered 503 by the one error handler, whatever the route: ingestion
// answered a generic 500 before (issue 10).
func TestStorageFailureIsA503(t *testing.T) {
	s := &Server{log: hclog.NewNullLogger()}
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/api/0/ingest", nil), rec)
	s.handleError(fmt.Errorf("append samples: %w", fmt.Errorf("%w: hbd.db: database or disk is full", store.ErrStorage)), c)
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Error == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
