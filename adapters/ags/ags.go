// Package ags is the AccelByte Gaming Services target: fulfillments by
// transaction id on the Platform API (v3, or v2), full revokes of a
// fulfillment, partial revocations keyed by requestId, and user checks
// through IAM, with a client-credentials token cached until shortly before
// it expires. Every call goes through the shared adapters.Client, and one
// classifier (Classify) reads AGS's answers for the in-call retries, the
// breaker and the dispatcher.
package ags

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"storegate"
	"storegate/adapters"
)

// Config is one AGS environment and namespace. Zero fields take the
// defaults; Validate says which required ones are missing.
type Config struct {
	// BaseURL is the environment, e.g.
	// https://mystudio.prod.gamingservices.accelbyte.io. Required.
	BaseURL string
	// IAMURL is where tokens and user checks go. Default BaseURL.
	IAMURL string
	// Namespace is the game namespace. Required.
	Namespace string
	// ClientID and ClientSecret are an IAM confidential client with the
	// FULFILLMENT [UPDATE], REVOCATION [UPDATE] and USER [READ] permissions.
	// Required.
	ClientID     string
	ClientSecret string
	// FulfillmentAPI is v3 (default) or v2 of fulfillment by transaction id.
	FulfillmentAPI string
	// RevokeAPI is v2 (default: Revoke Fulfillment V2, the endpoint AGS
	// documents for third-party stores) or v3 of revoking a fulfillment by
	// its transaction id. Both answer a RevokeFulfillmentV2Result.
	RevokeAPI string
	// UserCheckPath is the IAM path that answers 200 for an existing user
	// and 404 otherwise; {namespace} and {userId} are filled in. Default
	// /iam/v3/admin/namespaces/{namespace}/users/{userId}.
	UserCheckPath string
	// Source is the fulfillment source AGS records. Default PURCHASE.
	Source string
	// ItemIDs sends these SKUs by AGS item id; any other SKU is sent as
	// itemSku. Default none.
	ItemIDs map[string]string
	// Client tunes the HTTP clients (timeout, in-flight cap, in-call
	// retries), one for the Platform API and one for IAM.
	Client adapters.ClientConfig
	// Breaker tunes the two breakers, one per API: the Platform API's
	// (deliveries) and IAM's (tokens and user checks), so IAM down fails
	// only what needs IAM.
	Breaker adapters.BreakerConfig
	// Name names the breakers: Name.platform and Name.iam. Default "ags".
	Name string
	// OnBreaker hears the breakers' state changes, for metrics. Optional.
	OnBreaker adapters.BreakerObserver
	// Now is the clock (token expiry). Default time.Now.
	Now func() time.Time
}

// DefaultUserCheckPath is IAM's admin "get user" route.
const DefaultUserCheckPath = "/iam/v3/admin/namespaces/{namespace}/users/{userId}"

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by New and Validate and by whoever
// shows them (the YAML config).
func (c Config) WithDefaults() Config {
	if c.IAMURL == "" {
		c.IAMURL = c.BaseURL
	}
	if c.FulfillmentAPI == "" {
		c.FulfillmentAPI = "v3"
	}
	if c.RevokeAPI == "" {
		c.RevokeAPI = "v2"
	}
	if c.UserCheckPath == "" {
		c.UserCheckPath = DefaultUserCheckPath
	}
	if c.Source == "" {
		c.Source = "PURCHASE"
	}
	if c.Name == "" {
		c.Name = "ags"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate lists what is wrong with the configuration, as "field: problem".
func (c Config) Validate() []string {
	c = c.WithDefaults()
	var p []string
	for _, u := range []struct{ name, value string }{{"base_url", c.BaseURL}, {"iam_url", c.IAMURL}} {
		if parsed, err := url.Parse(u.value); u.value == "" || err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
			p = append(p, u.name+": want an http(s) URL")
		}
	}
	if c.Namespace == "" {
		p = append(p, "namespace: required")
	}
	if c.ClientID == "" {
		p = append(p, "client_id: required")
	}
	if c.ClientSecret == "" {
		p = append(p, "client_secret: required (is its environment variable empty?)")
	}
	if c.FulfillmentAPI != "v2" && c.FulfillmentAPI != "v3" {
		p = append(p, fmt.Sprintf("fulfillment_api: %q is not v2 or v3", c.FulfillmentAPI))
	}
	if c.RevokeAPI != "v2" && c.RevokeAPI != "v3" {
		p = append(p, fmt.Sprintf("revoke_api: %q is not v2 or v3", c.RevokeAPI))
	}
	if !strings.HasPrefix(c.UserCheckPath, "/") || !strings.Contains(c.UserCheckPath, "{userId}") {
		p = append(p, "user_check_path: want a path starting with / that contains {userId}")
	}
	return p
}

// Target delivers commands to AGS. It is safe for concurrent use.
type Target struct {
	cfg    Config
	client *adapters.Client // the Platform API
	iam    *adapters.Client // IAM: tokens and user checks
	tokens *tokens

	mu sync.Mutex
	// failed holds fulfillments AGS answered FULFILL_FAILED: their next
	// attempt asks AGS to retry them rather than sending them again. Lost on
	// restart, which costs one PUT that AGS answers with the same state.
	failed map[string]bool
	users  adapters.Recent[IAMUser]
}

// New returns an AGS target.
func New(cfg Config) (*Target, error) {
	cfg = cfg.WithDefaults()
	if p := cfg.Validate(); len(p) > 0 {
		return nil, fmt.Errorf("ags: %s", strings.Join(p, "; "))
	}
	platform, iam := cfg.Client, cfg.Client
	platform.Breaker = adapters.NewBreaker(cfg.Name+".platform", cfg.Breaker, cfg.Now, cfg.OnBreaker)
	iam.Breaker = adapters.NewBreaker(cfg.Name+".iam", cfg.Breaker, cfg.Now, cfg.OnBreaker)
	t := &Target{cfg: cfg, client: adapters.NewClient(platform, Classify), iam: adapters.NewClient(iam, nil), failed: map[string]bool{}}
	t.tokens = &tokens{client: t.iam, url: pathJoin(cfg.IAMURL, "/iam/v3/oauth/token"),
		clientID: cfg.ClientID, clientSecret: cfg.ClientSecret, now: cfg.Now, lock: make(chan struct{}, 1)}
	return t, nil
}

// Deliver fulfills or revokes one command in AGS. Fulfillments and full
// revokes are keyed by the fulfillment's transaction id, partial revocations
// by requestId = the command's id, so AGS applies each at most once however
// often it is delivered.
func (t *Target) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	switch {
	case c.Kind == storegate.KindFulfill:
		return t.fulfill(ctx, c)
	case c.Kind == storegate.KindRevoke && len(c.Lines) == 0:
		return t.revoke(ctx, c)
	case c.Kind == storegate.KindRevoke:
		return t.revocation(ctx, c)
	}
	return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "UNKNOWN_KIND", Message: fmt.Sprintf("unknown command kind %q", c.Kind)}
}

// fulfillmentItem is FulfillmentV2RequestItem.
type fulfillmentItem struct {
	ItemID            string         `json:"itemId,omitempty"`
	ItemSku           string         `json:"itemSku,omitempty"`
	Quantity          int64          `json:"quantity"`
	OrderNo           string         `json:"orderNo,omitempty"`
	Source            string         `json:"source"`
	Origin            string         `json:"origin"`
	EntitlementOrigin string         `json:"entitlementOrigin"`
	Metadata          map[string]any `json:"metadata,omitempty"`
}

func (t *Target) userPath(c storegate.Command, version string) string {
	p := "/platform"
	if version != "" {
		p += "/" + version
	}
	return pathJoin(t.cfg.BaseURL, p, "/admin/namespaces/", url.PathEscape(t.cfg.Namespace), "/users/", url.PathEscape(c.PlayerID))
}

func (t *Target) fulfill(ctx context.Context, c storegate.Command) storegate.Outcome {
	if len(c.Lines) == 0 {
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "NO_ITEMS", Message: "a fulfillment with no lines"}
	}
	u := t.userPath(c, t.cfg.FulfillmentAPI) + "/fulfillments/" + url.PathEscape(c.ID)
	if t.isFailed(c.ID) {
		_, out := t.call(ctx, http.MethodPut, u+"/retry", nil)
		if out.Verdict == storegate.VerdictDead {
			// AGS does not know it as failed (any more): send it in full
			// next time, which AGS applies at most once.
			t.setFailed(c.ID, false)
			return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: out.Code, HTTPStatus: out.HTTPStatus,
				Message: "retry of a failed fulfillment refused; sending it again: " + out.Message}
		}
		if out.Verdict == storegate.VerdictDone {
			t.setFailed(c.ID, false)
		}
		return out
	}
	origin := Origin(c.Platform)
	items := make([]fulfillmentItem, 0, len(c.Lines))
	for _, l := range c.Lines {
		it := fulfillmentItem{Quantity: l.Quantity, OrderNo: c.ID, Source: t.cfg.Source, Origin: origin, EntitlementOrigin: origin,
			Metadata: map[string]any{"storegateSource": c.Source, "orderRef": c.OrderRef}}
		if id, ok := t.cfg.ItemIDs[l.SKU]; ok {
			it.ItemID = id
		} else {
			it.ItemSku = l.SKU
		}
		items = append(items, it)
	}
	body, _ := json.Marshal(map[string]any{"items": items})
	_, out := t.call(ctx, http.MethodPut, u, body)
	if out.Code == codeFulfillFailed {
		t.setFailed(c.ID, true)
	} else if out.Verdict == storegate.VerdictDone {
		t.setFailed(c.ID, false)
	}
	return out
}

// revoke takes back everything the reversed fulfillment granted, through
// Revoke Fulfillment (v2 by default): a PUT without a body, keyed by the
// fulfillment's transaction id, so AGS applies it once however often it is
// sent; a failed one is sent again as it is.
func (t *Target) revoke(ctx context.Context, c storegate.Command) storegate.Outcome {
	if c.Reverses == "" {
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "NOTHING_TO_REVOKE", Message: "a full revoke names no fulfillment"}
	}
	u := t.userPath(c, t.cfg.RevokeAPI) + "/fulfillments/" + url.PathEscape(c.Reverses) + "/revoke"
	_, out := t.call(ctx, http.MethodPut, u, nil)
	return out
}

// RevokeResult is AGS's RevokeFulfillmentV2Result, the answer of Revoke
// Fulfillment v2 and v3 (and the body of v2's 409): the revocation history
// id, the namespace, user and transaction, the fulfillment's items, the
// state (REVOKED or REVOKE_FAILED), the success and failed lists, and the
// item, entitlement and credit revocations with their strategies.
type RevokeResult struct {
	ID                     string                  `json:"id"`
	Namespace              string                  `json:"namespace"`
	UserID                 string                  `json:"userId"`
	TransactionID          string                  `json:"transactionId"`
	Items                  []FulfillmentItem       `json:"items"`
	State                  string                  `json:"state"`
	StateInfo              StateInfo               `json:"stateInfo"`
	ItemRevocations        []ItemRevocation        `json:"itemRevocations"`
	EntitlementRevocations []EntitlementRevocation `json:"entitlementRevocations"`
	CreditRevocations      []CreditRevocation      `json:"creditRevocations"`
}

// FulfillmentItem is one item of a fulfillment.
type FulfillmentItem struct {
	ItemID   string `json:"itemId"`
	ItemSku  string `json:"itemSku"`
	ItemName string `json:"itemName,omitempty"`
	ItemType string `json:"itemType"`
	Quantity int64  `json:"quantity"`
}

// StateInfo is successList and failedList; a bundle's entry lists its
// contents in Items.
type StateInfo struct {
	SuccessList []StateEntry `json:"successList"`
	FailedList  []StateEntry `json:"failedList"`
}

// StateEntry is one entry of StateInfo (FulfillItemResult); a bundle's
// contents (FulfillBundledItemResult) carry their quantity.
type StateEntry struct {
	ItemID   string       `json:"itemId"`
	ItemSku  string       `json:"itemSku"`
	Quantity int64        `json:"quantity,omitempty"`
	Error    string       `json:"error,omitempty"`
	Items    []StateEntry `json:"items,omitempty"`
}

// ItemRevocation is one item revoked, with its bundle contents nested.
type ItemRevocation struct {
	ItemID                 string                  `json:"itemId"`
	ItemSku                string                  `json:"itemSku"`
	ItemType               string                  `json:"itemType"`
	Quantity               int64                   `json:"quantity"`
	EntitlementOrigin      string                  `json:"entitlementOrigin,omitempty"`
	Strategy               string                  `json:"strategy"`
	Skipped                bool                    `json:"skipped"`
	Status                 string                  `json:"status"`
	Reason                 string                  `json:"reason,omitempty"`
	CustomRevocation       map[string]any          `json:"customRevocation,omitempty"`
	EntitlementRevocations []EntitlementRevocation `json:"entitlementRevocations,omitempty"`
	CreditRevocations      []CreditRevocation      `json:"creditRevocations,omitempty"`
	ItemRevocations        []ItemRevocation        `json:"itemRevocations,omitempty"`
}

// EntitlementRevocation is one entitlement revoked.
type EntitlementRevocation struct {
	EntitlementID      string `json:"entitlementId"`
	ItemID             string `json:"itemId"`
	ItemSku            string `json:"itemSku"`
	Quantity           int64  `json:"quantity"`
	RevocationStrategy string `json:"revocationStrategy"`
	Skipped            bool   `json:"skipped"`
	Status             string `json:"status"`
	Reason             string `json:"reason,omitempty"`
}

// CreditRevocation is currency taken back from one wallet.
type CreditRevocation struct {
	WalletID           string `json:"walletId"`
	CurrencyCode       string `json:"currencyCode"`
	BalanceOrigin      string `json:"balanceOrigin"`
	Amount             int64  `json:"amount"`
	RevocationStrategy string `json:"revocationStrategy"`
	Skipped            bool   `json:"skipped"`
	Status             string `json:"status"`
	Reason             string `json:"reason,omitempty"`
}

// revokeFailures says why AGS could not revoke: the failed item
// revocations with their strategies and reasons (bundle contents
// included), else the failed list.
func revokeFailures(body []byte) string {
	var r RevokeResult
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	var parts []string
	var walk func([]ItemRevocation)
	walk = func(items []ItemRevocation) {
		for _, ir := range items {
			if ir.Status == "FAIL" && len(ir.ItemRevocations) == 0 {
				id := ir.ItemSku
				if id == "" {
					id = ir.ItemID
				}
				parts = append(parts, fmt.Sprintf("%s (%s): %s", id, ir.Strategy, ir.Reason))
			}
			walk(ir.ItemRevocations)
		}
	}
	walk(r.ItemRevocations)
	return clip(strings.Join(parts, "; "))
}

type revokeEntry struct {
	Type     string          `json:"type"`
	Quantity int64           `json:"quantity"`
	Item     *revokeItem     `json:"item,omitempty"`
	Currency *revokeCurrency `json:"currency,omitempty"`
}

type revokeItem struct {
	ItemIdentity      string `json:"itemIdentity"`
	ItemIdentityType  string `json:"itemIdentityType"`
	EntitlementOrigin string `json:"entitlementOrigin"`
}

type revokeCurrency struct {
	Namespace     string `json:"namespace"`
	CurrencyCode  string `json:"currencyCode"`
	BalanceOrigin string `json:"balanceOrigin"`
}

// revocation takes back some lines (a partial refund) with doRevocation,
// whose requestId makes a second delivery a replay.
func (t *Target) revocation(ctx context.Context, c storegate.Command) storegate.Outcome {
	if c.Reverses != "" {
		// A revocation of items the player does not hold yet fails for good
		// in AGS; wait while the fulfillment it reverses is not there.
		if out := t.fulfilled(ctx, c); out != nil {
			return *out
		}
	}
	origin := Origin(c.Platform)
	var entries []revokeEntry
	for _, l := range c.Lines {
		if l.Type == storegate.ItemCurrency {
			for _, g := range l.Grants {
				if g.Currency != "" && g.Amount > 0 {
					entries = append(entries, revokeEntry{Type: "CURRENCY", Quantity: g.Amount,
						Currency: &revokeCurrency{Namespace: t.cfg.Namespace, CurrencyCode: g.Currency, BalanceOrigin: origin}})
				}
			}
			continue
		}
		it := &revokeItem{ItemIdentity: l.SKU, ItemIdentityType: "ITEM_SKU", EntitlementOrigin: origin}
		if id, ok := t.cfg.ItemIDs[l.SKU]; ok {
			it.ItemIdentity, it.ItemIdentityType = id, "ITEM_ID"
		}
		entries = append(entries, revokeEntry{Type: "ITEM", Quantity: l.Quantity, Item: it})
	}
	ref := c.Reverses
	if ref == "" {
		ref = c.OrderRef
	}
	body, _ := json.Marshal(map[string]any{
		"source": revocationSource(c.Platform), "transactionId": ref, "requestId": c.ID, "reason": c.Reason,
		"meta": map[string]any{"storegateSource": c.Source, "orderRef": c.OrderRef}, "revokeEntries": entries})
	_, out := t.call(ctx, http.MethodPut, t.userPath(c, "")+"/revocation", body)
	return out
}

// fulfilled asks AGS whether the fulfillment c reverses exists; nil means yes.
func (t *Target) fulfilled(ctx context.Context, c storegate.Command) *storegate.Outcome {
	q := url.Values{"userId": {c.PlayerID}, "transactionId": {c.Reverses}, "limit": {"1"}}
	u := pathJoin(t.cfg.BaseURL, "/platform/v2/admin/namespaces/", url.PathEscape(t.cfg.Namespace), "/fulfillments?", q.Encode())
	resp, out := t.call(ctx, http.MethodGet, u, nil)
	if out.Verdict != storegate.VerdictDone {
		return &out
	}
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(adapters.Body(resp), &page); err != nil {
		return &storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: resp.StatusCode, Code: "BAD_ANSWER", Message: "fulfillment query answer is not JSON"}
	}
	if len(page.Data) == 0 {
		return &storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, HTTPStatus: resp.StatusCode, Code: "NOT_GRANTED_YET",
			Message: "the fulfillment " + c.Reverses + " is not in AGS yet"}
	}
	return nil
}

// UserExists asks IAM whether a user exists: 2xx yes, 404 no, anything else
// is an error (the caller cannot tell). A yes is remembered a few seconds:
// user_validation and the grant behind it ask in a row.
func (t *Target) UserExists(ctx context.Context, playerID string) (bool, error) {
	_, ok, err := t.user(ctx, playerID)
	return ok, err
}

// UserAttributes describes an IAM user to Xsolla: country, display_name and
// age (whole years, from dateOfBirth), each when IAM has it.
func (t *Target) UserAttributes(ctx context.Context, playerID string) (map[string]json.RawMessage, error) {
	u, ok, err := t.user(ctx, playerID)
	if err != nil || !ok {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for name, v := range map[string]string{"country": u.Country, "display_name": u.DisplayName} {
		if v != "" {
			out[name], _ = json.Marshal(v)
		}
	}
	if born, err := time.Parse(time.DateOnly, u.DateOfBirth); err == nil {
		out["age"], _ = json.Marshal(age(born, t.cfg.Now()))
	}
	return out, nil
}

// IAMUser is what storegate reads of IAM's user.
type IAMUser struct {
	Country     string `json:"country"`
	DisplayName string `json:"displayName"`
	DateOfBirth string `json:"dateOfBirth"`
}

func (t *Target) user(ctx context.Context, playerID string) (IAMUser, bool, error) {
	now := t.cfg.Now()
	if u, ok := t.users.Get(playerID, now); ok {
		return u, true, nil
	}
	p := strings.NewReplacer("{namespace}", url.PathEscape(t.cfg.Namespace), "{userId}", url.PathEscape(playerID)).Replace(t.cfg.UserCheckPath)
	resp, out := t.send(ctx, t.iam, http.MethodGet, pathJoin(t.cfg.IAMURL, p), nil)
	switch {
	case out.Verdict == storegate.VerdictDone:
		var u IAMUser
		_ = json.Unmarshal(adapters.Body(resp), &u) // a yes without a readable body is still a yes
		t.users.Put(playerID, u, now)
		return u, true, nil
	case out.HTTPStatus == http.StatusNotFound:
		return IAMUser{}, false, nil
	}
	return IAMUser{}, false, fmt.Errorf("ags: user check: %s %s: %s", out.Verdict, out.Code, out.Message)
}

// age is the whole years from born to now.
func age(born, now time.Time) int {
	years := now.Year() - born.Year()
	if now.Month() < born.Month() || now.Month() == born.Month() && now.Day() < born.Day() {
		years--
	}
	return max(years, 0)
}

// call sends one authorised request to the Platform API.
func (t *Target) call(ctx context.Context, method, u string, body []byte) (*http.Response, storegate.Outcome) {
	return t.send(ctx, t.client, method, u, body)
}

// send sends one authorised request through client. A 401 means the cached
// token died early (revoked, IAM restarted): fetch a new one and try once
// more.
func (t *Target) send(ctx context.Context, client *adapters.Client, method, u string, body []byte) (*http.Response, storegate.Outcome) {
	for try := 0; ; try++ {
		token, fail := t.tokens.get(ctx)
		if fail != nil {
			return nil, *fail
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+token)
		h.Set("Accept", "application/json")
		if body != nil {
			h.Set("Content-Type", "application/json")
		}
		resp, out := client.Do(ctx, method, u, body, h)
		if out.HTTPStatus == http.StatusUnauthorized && try == 0 {
			t.tokens.drop(ctx, token)
			continue
		}
		return resp, out
	}
}

func (t *Target) isFailed(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed[id]
}

func (t *Target) setFailed(id string, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if failed {
		t.failed[id] = true
	} else {
		delete(t.failed, id)
	}
}

// AGS error codes the classifier treats specially (protocols.md §3).
const (
	codeOptimisticLock  = 20006 // concurrent update: try again
	codeNotFulfilledYet = 38145 // revoke of a fulfillment AGS does not have yet
	codeFulfillFailed   = "FULFILL_FAILED"
)

// answer is the part of any AGS answer the classifier reads: an
// ErrorEntity, a FulfillmentV2Result / RevokeFulfillmentV2Result (state), or
// a RevocationResult (status).
type answer struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	State        string `json:"state"`
	StateInfo    struct {
		FailedList []struct {
			ItemID  string `json:"itemId"`
			ItemSku string `json:"itemSku"`
			Error   string `json:"error"`
		} `json:"failedList"`
	} `json:"stateInfo"`
	Status string `json:"status"`
}

// Classify is the AGS classifier: adapters.Classify, refined by what AGS
// says in its answer.
//
//   - 2xx with state FULFILLED or REVOKED, or status SUCCESS: done.
//   - state FULFILL_FAILED (200, or a v2 409 carrying the result): retry
//     later (the next attempt calls /retry); deferred, AGS is healthy.
//   - state REVOKE_FAILED, status FAIL: dead letter (revocation rules such
//     as "fail if the balance would go negative" refused it: a person
//     decides).
//   - 38145 (revoke before its grant): retry later, deferred.
//   - 20006 (optimistic lock), 408, 429, 5xx, timeouts: retry, with the
//     Retry-After hint. A 4xx never counts against the breaker.
//   - 38128, 30341, 30343 and any other 4xx: dead letter, keeping AGS's
//     errorCode and errorMessage.
func Classify(resp *http.Response, err error) storegate.Outcome {
	out := adapters.Classify(resp, err)
	if err != nil || resp == nil {
		return out
	}
	var a answer
	_ = json.Unmarshal(adapters.Body(resp), &a) // not JSON: the status decides
	if a.ErrorCode != 0 {
		out.Code = strconv.Itoa(a.ErrorCode)
		out.Message = fmt.Sprintf("AGS answered %d: %s", resp.StatusCode, clip(a.ErrorMessage))
	}
	switch {
	case a.State == codeFulfillFailed && (out.Verdict == storegate.VerdictDone || resp.StatusCode == http.StatusConflict):
		out.Verdict, out.Deferred, out.Code = storegate.VerdictRetry, true, codeFulfillFailed
		out.Message = "AGS could not fulfill every item: " + failures(a)
	case a.State == "REVOKE_FAILED" && (out.Verdict == storegate.VerdictDone || resp.StatusCode == http.StatusConflict):
		out.Verdict, out.Code = storegate.VerdictDead, "REVOKE_FAILED"
		why := revokeFailures(adapters.Body(resp))
		if why == "" {
			why = failures(a)
		}
		out.Message = "AGS could not revoke every item: " + why
	case (a.State == "FULFILLED" || a.State == "REVOKED") && resp.StatusCode == http.StatusConflict:
		out.Verdict, out.Code, out.Message = storegate.VerdictDone, "", ""
	case a.Status == "FAIL" && out.Verdict == storegate.VerdictDone:
		out.Verdict, out.Code, out.Message = storegate.VerdictDead, "REVOCATION_FAILED", "AGS revocation status FAIL"
	case a.ErrorCode == codeNotFulfilledYet:
		out.Verdict, out.Deferred = storegate.VerdictRetry, true
	case a.ErrorCode == codeOptimisticLock:
		out.Verdict = storegate.VerdictRetry
	}
	return out
}

func failures(a answer) string {
	if len(a.StateInfo.FailedList) == 0 {
		return "no details"
	}
	var parts []string
	for _, f := range a.StateInfo.FailedList {
		id := f.ItemSku
		if id == "" {
			id = f.ItemID
		}
		parts = append(parts, id+": "+f.Error)
	}
	return clip(strings.Join(parts, "; "))
}

func clip(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// Origin is the AGS origin (and entitlementOrigin, balanceOrigin) of a
// platform. Xsolla has none of its own in AGS: it is Other.
func Origin(p storegate.Platform) string {
	switch p {
	case storegate.PlatformSteam, storegate.PlatformEpic, storegate.PlatformXbox, storegate.PlatformTwitch, storegate.PlatformSystem:
		return string(p)
	case storegate.PlatformPlayStation:
		return "Playstation"
	}
	return "Other"
}

// revocationSource is doRevocation's source: IAP for third-party stores,
// ORDER for everything sold through a web shop.
func revocationSource(p storegate.Platform) string {
	switch p {
	case storegate.PlatformSteam, storegate.PlatformEpic, storegate.PlatformXbox, storegate.PlatformPlayStation, storegate.PlatformTwitch:
		return "IAP"
	}
	return "ORDER"
}
