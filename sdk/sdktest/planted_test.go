package sdktest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

// txnNotifier sends each event to <url>/send/<transaction id>, as a Matrix
// notifier does. With safe unset it makes the mistake the conformance kit
// must catch: the raw event ID as the transaction id.
type txnNotifier struct {
	safe   bool
	client *http.Client
}

func (n *txnNotifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "txn", Label: "Transactions", Fields: []sdk.Field{
		{Key: "url", Label: "URL", Type: sdk.FieldText, Required: true},
		{Key: "token", Label: "Token", Type: sdk.FieldSecret, Required: true},
	}}
}

func (n *txnNotifier) Validate(cfg sdk.Settings) error {
	if _, err := sdk.ParseHTTPURL(cfg.String("url")); err != nil {
		return &sdk.FieldError{Key: "url", Err: err}
	}
	return nil
}

func (n *txnNotifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	txn := ev.ID // the planted bug
	if n.safe {
		txn = sdk.SafeID(ev.ID)
	}
	target, err := url.JoinPath(cfg.String("url"), "send", txn)
	if err != nil {
		return sdk.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, strings.NewReader(sdk.RenderTitle(ev)))
	if err != nil {
		return sdk.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+cfg.String("token"))
	return sdk.DoHTTP(n.client, req)
}

const plantedEnv = "HBD_SDKTEST_PLANTED_RAW_ID"

// TestConformanceFailsRawIDInURLPath runs the conformance kit, in a child
// test process, against a notifier that puts the raw event ID into its URL
// path, and requires the kit to fail it for that reason; the same notifier
// using sdk.SafeID passes.
func TestConformanceFailsRawIDInURLPath(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	cfg := sdk.Config{"url": receiver.URL + "/_matrix/client/v3/rooms/room1", "token": "tok"}
	if os.Getenv(plantedEnv) == "1" {
		sdktest.Conformance(t, &txnNotifier{client: sdk.HTTPClient(5 * time.Second)}, cfg)
		return
	}

	sdktest.Conformance(t, &txnNotifier{safe: true, client: sdk.HTTPClient(5 * time.Second)}, cfg)

	cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceFailsRawIDInURLPath$", "-test.count=1")
	cmd.Env = append(os.Environ(), plantedEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the conformance kit passed a notifier that puts the raw event ID into its URL path:\n%s", out)
	}
	if !strings.Contains(string(out), "put the raw event ID") {
		t.Fatalf("the kit failed the planted notifier, but not for the raw ID in the path:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "--- FAIL") && !strings.Contains(line, "TestConformanceFailsRawIDInURLPath") &&
			!strings.Contains(line, "event_ids_stay_out_of_url_paths") {
			t.Errorf("the planted notifier failed an unrelated check: %s", line)
		}
	}
}

// hookNotifier posts to a webhook URL held in a secret field, as the
// Discord and Teams notifiers do. With careless set it makes the mistakes
// the conformance kit must catch there too: its own http.Client, which
// ignores the destination policy, and errors that quote the URL.
type hookNotifier struct{ careless bool }

func (n *hookNotifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "hook", Label: "Hook", Fields: []sdk.Field{
		{Key: "webhook_url", Label: "Webhook URL", Type: sdk.FieldSecret, Required: true},
	}}
}

func (n *hookNotifier) Validate(cfg sdk.Settings) error {
	if _, err := sdk.ParseHTTPURL(cfg.String("webhook_url")); err != nil {
		return &sdk.FieldError{Key: "webhook_url", Err: err}
	}
	return nil
}

func (n *hookNotifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	if !n.careless {
		return sdk.PostJSON(ctx, sdk.HTTPClient(5*time.Second), cfg.String("webhook_url"), map[string]string{"text": sdk.RenderTitle(ev)})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.String("webhook_url"), strings.NewReader("{}"))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err // a *url.Error: it quotes the URL
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %s", cfg.String("webhook_url"), resp.Status)
	}
	return nil
}

const plantedHookEnv = "HBD_SDKTEST_PLANTED_SECRET_URL"

// TestConformanceChecksSecretURLFields: a notifier whose service address
// is a secret field gets the failure, leak and destination-policy checks;
// the kit fails one that bypasses the policy and quotes its URL, and
// passes the same notifier written with sdk.PostJSON.
func TestConformanceChecksSecretURLFields(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	cfg := sdk.Config{"webhook_url": receiver.URL + "/api/webhooks/1/token"}
	if os.Getenv(plantedHookEnv) == "1" {
		sdktest.Conformance(t, &hookNotifier{careless: true}, cfg)
		return
	}

	sdktest.Conformance(t, &hookNotifier{}, cfg)

	cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceChecksSecretURLFields$", "-test.count=1")
	cmd.Env = append(os.Environ(), plantedHookEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the conformance kit passed a notifier that ignores the destination policy of its secret URL:\n%s", out)
	}
	for _, want := range []string{
		"--- FAIL: TestConformanceChecksSecretURLFields/destination_policy_obeyed",
		"want a permanent refusal",
		`contains the value of secret field "webhook_url"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the kit's report on the planted notifier lacks %q:\n%s", want, out)
		}
	}
}
