package ags_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"

	"storegate"
	"storegate/adapters/ags"
	"storegate/adapters/ags/agstest"
)

// revokeResultSchema is RevokeFulfillmentV2Result as AGS's published API
// definition gives it, written down in testdata.
func revokeResultSchema(t *testing.T) *gojsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("testdata/revoke_fulfillment_v2_result.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putRevoke calls the fake's Revoke Fulfillment directly and returns its
// status and raw answer, for checking the answer against the definition.
func putRevoke(t *testing.T, fake *agstest.Server, version, transactionID string) (int, []byte) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/iam/v3/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(fake.ClientID+":"+fake.ClientSecret)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodPut, fake.URL+"/platform/"+version+"/admin/namespaces/game/users/user-1/fulfillments/"+transactionID+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// A full revoke goes through Revoke Fulfillment V2 by default, v3 when
// configured: a PUT without a body on the fulfillment's transaction id,
// applied once however often it is sent. The fake's answers, revoked and
// failed, are RevokeFulfillmentV2Results as AGS defines them, and
// ags.RevokeResult reads every field of them.
func TestTarget_RevokeFulfillment(t *testing.T) {
	schema := revokeResultSchema(t)
	for _, tc := range []struct{ name, api, want string }{
		{name: "default is v2", api: "", want: "v2"},
		{name: "v2", api: "v2", want: "v2"},
		{name: "v3", api: "v3", want: "v3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			cfg := config(fake)
			cfg.RevokeAPI = tc.api
			target := newTarget(t, cfg)
			if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
				t.Fatalf("fulfill = %+v", out)
			}
			for i := range 2 {
				if out := target.Deliver(context.Background(), revoke("xs.order.7")); out.Verdict != storegate.VerdictDone {
					t.Fatalf("revoke %d = %+v, want done", i+1, out)
				}
			}
			if got, want := fake.Path("revoke:xs.order.7"), "/platform/"+tc.want+"/admin/namespaces/game/users/user-1/fulfillments/xs.order.7/revoke"; got != want {
				t.Errorf("path = %q, want %q", got, want)
			}
			if body := fake.Body("revoke:xs.order.7"); len(body) != 0 {
				t.Errorf("body = %q, want none (Revoke Fulfillment takes no body)", body)
			}
			if got := fake.Effects()["revoke:xs.order.7"]; got != 1 {
				t.Errorf("revoke effects = %d, want 1", got)
			}

			status, raw := putRevoke(t, fake, tc.want, "xs.order.7")
			if status != http.StatusOK {
				t.Fatalf("status = %d: %s", status, raw)
			}
			res, err := schema.Validate(gojsonschema.NewBytesLoader(raw))
			if err != nil || !res.Valid() {
				t.Fatalf("answer %s does not match RevokeFulfillmentV2Result: %v %v", raw, err, res.Errors())
			}
			var r ags.RevokeResult
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatal(err)
			}
			if r.ID == "" || r.Namespace != "game" || r.UserID != "user-1" || r.TransactionID != "xs.order.7" || r.State != "REVOKED" ||
				len(r.Items) != 2 || len(r.ItemRevocations) != 2 || len(r.EntitlementRevocations) != 2 || r.CreditRevocations == nil ||
				len(r.StateInfo.SuccessList) != 2 {
				t.Errorf("result = %+v", r)
			}
		})
	}
}

// AGS's revocation rules refusing a revoke (REVOKE_FAILED, in a 200 or in
// v2's 409) is a dead letter naming each failed item, its strategy and why;
// a 409 carrying REVOKED is done. The failed answer matches the definition.
func TestTarget_RevokeFailed(t *testing.T) {
	schema := revokeResultSchema(t)
	for _, tc := range []struct {
		name    string
		fault   agstest.Fault
		verdict storegate.Verdict
		message string
	}{
		{name: "REVOKE_FAILED", fault: agstest.Fault{Kind: "revoke", State: "REVOKE_FAILED"}, verdict: storegate.VerdictDead,
			message: "AGS could not revoke every item: crystals_100 (REVOKE_OR_REPORT): entitlement was consumed; starter_sword (REVOKE_OR_REPORT): entitlement was consumed"},
		{name: "409 REVOKE_FAILED", fault: agstest.Fault{Kind: "revoke", Status: http.StatusConflict, State: "REVOKE_FAILED"}, verdict: storegate.VerdictDead,
			message: "AGS could not revoke every item: crystals_100 (REVOKE_OR_REPORT): entitlement was consumed; starter_sword (REVOKE_OR_REPORT): entitlement was consumed"},
		{name: "409 REVOKED", fault: agstest.Fault{Kind: "revoke", Status: http.StatusConflict, State: "REVOKED"}, verdict: storegate.VerdictDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			target := newTarget(t, config(fake))
			if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
				t.Fatalf("fulfill = %+v", out)
			}
			fake.Script(tc.fault)
			out := target.Deliver(context.Background(), revoke("xs.order.7"))
			if out.Verdict != tc.verdict || out.Message != tc.message {
				t.Errorf("outcome = %+v, want %s %q", out, tc.verdict, tc.message)
			}
			if tc.fault.State != "REVOKE_FAILED" {
				return
			}
			fake.Script(agstest.Fault{Kind: "revoke", State: "REVOKE_FAILED"})
			_, raw := putRevoke(t, fake, "v2", "xs.order.7")
			if res, err := schema.Validate(gojsonschema.NewBytesLoader(raw)); err != nil || !res.Valid() {
				t.Fatalf("answer %s does not match RevokeFulfillmentV2Result: %v %v", raw, err, res.Errors())
			}
			// Once the cause is fixed, the same revoke goes through.
			if out := target.Deliver(context.Background(), revoke("xs.order.7")); out.Verdict != storegate.VerdictDone {
				t.Errorf("revoke after the failure = %+v, want done", out)
			}
		})
	}
}
