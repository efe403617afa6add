package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
	"storegate/ledger"
)

var hidden = regexp.MustCompile(`name="key" value="([^"]+)"`)

// A manual update is reviewed (the balance before and after), then
// confirmed; it is the signed-in operator's, and confirming it twice
// changes the balance once.
func TestAdjust_ReviewThenConfirmOnce(t *testing.T) {
	g := consoleGateway(t)
	paidAndRefunded(t, g)
	c := newClient(t, g)
	token := c.signIn("alice")
	if p := c.get("/console/players/player-1/adjust?currency=CRYSTALS"); p.StatusCode != http.StatusOK || !strings.Contains(p.Body, `name="amount"`) {
		t.Fatalf("form: %d\n%s", p.StatusCode, p.Body)
	}
	form := url.Values{"csrf": {token}, "step": {"review"}, "amount": {"-30"}, "platform": {"Xsolla"}, "reason": {"goodwill reversed"}}
	review := c.post("/console/players/player-1/adjust?currency=CRYSTALS", form)
	if want := "-30 CRYSTALS to player player-1 on Xsolla: that balance goes from 100 to 70"; !strings.Contains(plain(review.Body), want) {
		t.Fatalf("review does not say %q:\n%s", want, plain(review.Body))
	}
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("the review changed the balance to %d", got)
	}
	form.Set("step", "confirm")
	form.Set("key", hidden.FindStringSubmatch(review.Body)[1])
	for range 2 {
		if p := c.post("/console/players/player-1/adjust?currency=CRYSTALS", form); !strings.Contains(plain(p.Body), "the total 70") {
			t.Fatalf("confirmation: %d\n%s", p.StatusCode, plain(p.Body))
		}
	}
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 70 {
		t.Fatalf("balance = %d, want 70: the update applied once", got)
	}
	es, _, err := g.Ledger.History(context.Background(), "player-1", ledger.HistoryQuery{Kind: "adjustment"})
	if err != nil || len(es) != 1 || es[0].Actor != "alice" || es[0].Reason != "goodwill reversed" {
		t.Fatalf("adjustments = %+v, %v; want one by alice", es, err)
	}
}

// A confirmation posted without the session's form token (a forged form
// from another site, riding the cookie) is refused, and nothing changes.
func TestAdjust_ForgedPostChangesNothing(t *testing.T) {
	g := consoleGateway(t)
	paidAndRefunded(t, g)
	c := newClient(t, g)
	c.signIn("alice")
	before := g.Everything(t)
	for _, token := range []string{"", "forged"} {
		p := c.post("/console/players/player-1/adjust?currency=CRYSTALS", url.Values{"csrf": {token}, "step": {"confirm"},
			"key": {"console-x"}, "amount": {"1000"}, "platform": {"System"}, "reason": {"free money"}})
		if p.StatusCode != http.StatusForbidden || !strings.Contains(p.Body, "nothing was changed") {
			t.Fatalf("forged post: %d\n%s", p.StatusCode, p.Body)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
}

// The console's update is the admin route's: the same refusals.
func TestAdjust_RefusedAsTheAdminRouteRefuses(t *testing.T) {
	g := consoleGateway(t)
	paidAndRefunded(t, g)
	c := newClient(t, g)
	token := c.signIn("alice")
	before := g.Everything(t)
	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
	}{
		{"/console/players/player-1/adjust?currency=GEMS", url.Values{"amount": {"5"}, "reason": {"r"}}, http.StatusBadRequest},
		{"/console/players/player-1/adjust?currency=CRYSTALS", url.Values{"amount": {"-500"}, "platform": {"Xsolla"}, "reason": {"r"}}, http.StatusConflict},
		{"/console/players/player-1/adjust?currency=CRYSTALS", url.Values{"amount": {"5"}, "platform": {"Moon"}, "reason": {"r"}}, http.StatusBadRequest},
		{"/console/players/player-1/adjust?currency=CRYSTALS", url.Values{"amount": {"5"}, "reason": {strings.Repeat("r", 501)}}, http.StatusBadRequest},
	} {
		tc.form.Set("csrf", token)
		tc.form.Set("step", "confirm")
		tc.form.Set("key", "console-k1")
		if p := c.post(tc.path, tc.form); p.StatusCode != tc.status {
			t.Errorf("%s %v: %d, want %d\n%s", tc.path, tc.form, p.StatusCode, tc.status, plain(p.Body))
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
}

// Dead letters are listed by filter; one shows its last error and every
// attempt; a replay asks first, then puts it back with the same id, and
// the grant is applied; a discard needs a reason.
func TestDeadLetters_ListShowReplayDiscard(t *testing.T) {
	g := consoleGateway(t)
	id := g.DeadLetter(t, 3001, "player-1")
	other := g.DeadLetter(t, 3002, "player-2")
	c := newClient(t, g)
	token := c.signIn("alice")
	list := plain(c.get("/console/deadletters?target=ledger&player=player-1&since=2026-11-01T00:00").Body)
	if !strings.Contains(list, id) || strings.Contains(list, other) {
		t.Fatalf("the filtered list shows the wrong dead letters:\n%s", list)
	}
	if list := plain(c.get("/console/deadletters?source=nobody").Body); strings.Contains(list, id) {
		t.Fatalf("a source with no dead letters lists %s", id)
	}
	detail := plain(c.get("/console/deadletters/" + id).Body)
	for _, want := range []string{"AGS answered 404: Item of sku [crystals_100] does not exist", "0 1 2026-11-01 12:00:00Z dead 404 30343"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the detail does not show %q:\n%s", want, detail)
		}
	}
	if p := c.get("/console/deadletters/" + id + "/replay"); !strings.Contains(p.Body, `id="confirm"`) || g.Balance(t, "player-1", "CRYSTALS") != 0 {
		t.Fatalf("the replay form changed something or asks nothing:\n%s", plain(p.Body))
	}
	done := c.post("/console/deadletters/"+id+"/replay", url.Values{"csrf": {token}})
	if !strings.Contains(plain(done.Body), "The command was replayed by alice") {
		t.Fatalf("replay: %d\n%s", done.StatusCode, plain(done.Body))
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("after the replay the balance is %d, want 100", got)
	}
	if p := c.post("/console/deadletters/"+other+"/discard", url.Values{"csrf": {token}}); p.StatusCode != http.StatusBadRequest {
		t.Fatalf("a discard without a reason: %d, want 400", p.StatusCode)
	}
	if p := c.post("/console/deadletters/"+other+"/discard", url.Values{"csrf": {token}, "reason": {"refunded by hand"}}); !strings.Contains(plain(p.Body), "discard by alice: refunded by hand") {
		t.Fatalf("discard: %d\n%s", p.StatusCode, plain(p.Body))
	}
	if p := c.post("/console/deadletters/"+id+"/replay", url.Values{"csrf": {token}}); p.StatusCode != http.StatusConflict {
		t.Fatalf("replaying a done command: %d, want 409", p.StatusCode)
	}
}
