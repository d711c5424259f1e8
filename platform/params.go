package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits enforced by ValidateParams.
const (
	// MaxRequestBodyBytes is the platform's request body limit
	// (request.bytes.max = 512,000 bytes). Larger bodies are never sent.
	MaxRequestBodyBytes = 512_000
	// MaxAddContacts is the most contacts one contacts.add job may carry
	// (the platform's per-request limit, community-sourced).
	MaxAddContacts = 1000
	// MaxRemoveContacts is the most contact ids one contacts.remove job may
	// carry. The ids travel in the URL's query string (contactIds=a,b,c);
	// 100 ids of at most 64 bytes keep the request line under 8 KiB, the
	// limit of common HTTP front ends, so a large job cannot fail with 414.
	MaxRemoveContacts = 100
	// maxIDLen bounds campaign, contact list and contact ids.
	maxIDLen = 64
	// maxDataKeyLen bounds a contact data column name.
	maxDataKeyLen = 256
)

// Campaign statuses (campaignStatus). Only StatusOn and StatusOff can be set
// with campaign.set_status: the platform documents campaignStatus as "A
// Campaign may be turned 'on' or 'off'", and Genesys's own Terraform provider
// accepts exactly those two. The others are states the platform moves a
// campaign into by itself (turning a campaign off passes through "stopping").
const (
	StatusOn             = "on"
	StatusOff            = "off"
	StatusStopping       = "stopping"
	StatusComplete       = "complete"
	StatusInvalid        = "invalid"
	StatusForcedOff      = "forced_off"
	StatusForcedStopping = "forced_stopping"
)

// request is one prepared platform request: everything Client.send needs.
type request struct {
	method string
	path   string // escaped absolute path, already validated
	query  string // encoded query string without '?'; "" for none
	body   []byte // nil: no body
}

// prepared is a validated operation.
type prepared struct {
	op         string
	req        request
	campaignID string        // campaign.stop, campaign.set_status
	status     string        // campaign.set_status: the wanted campaignStatus
	waitOff    time.Duration // campaign.stop, set_status off: wait until the campaign is off
}

// ValidateParams checks a job's operation and params without any I/O, exactly
// as Client.Do will before sending. For api.request it checks the path's
// syntax but not an allow-list, which belongs to the tenant (Client.Do checks
// its Config.AllowedPathPrefixes; see ValidateParamsAllowed). Errors are
// *InvalidRequestError.
func ValidateParams(op string, params json.RawMessage) error {
	_, err := prepare(op, params, nil, false)
	return err
}

// ValidateParamsAllowed is ValidateParams plus, for api.request, the check
// that the path lies under one of allowedPathPrefixes
// (nil: DefaultAllowedPathPrefixes) — the same check Client.Do makes.
func ValidateParamsAllowed(op string, params json.RawMessage, allowedPathPrefixes []string) error {
	if allowedPathPrefixes == nil {
		allowedPathPrefixes = DefaultAllowedPathPrefixes
	}
	_, err := prepare(op, params, allowedPathPrefixes, true)
	return err
}

// prepare validates op and params and builds the request. checkAllowed says
// whether api.request paths are matched against allowed.
func prepare(op string, params json.RawMessage, allowed []string, checkAllowed bool) (prepared, error) {
	switch op {
	case OpCampaignStart:
		return campaignRequest(op, params, http.MethodPost, "/start")
	case OpCampaignStop:
		return stopRequest(params)
	case OpCampaignGet:
		return campaignRequest(op, params, http.MethodGet, "")
	case OpCampaignProgress:
		return progressRequest(params)
	case OpCampaignStats:
		return campaignRequest(op, params, http.MethodGet, "/stats")
	case OpCampaignSetStatus:
		return setStatusRequest(params)
	case OpContactsAdd:
		return contactsAddRequest(params)
	case OpContactsRemove:
		return contactsRemoveRequest(params)
	case OpAPIRequest:
		return apiRequest(params, allowed, checkAllowed)
	case "":
		return prepared{}, &InvalidRequestError{Op: op, Reason: "op is required"}
	default:
		return prepared{}, &InvalidRequestError{Op: op, Reason: fmt.Sprintf("unknown op (want one of %s)", strings.Join(Ops(), ", "))}
	}
}

func invalidf(op, format string, args ...any) *InvalidRequestError {
	return &InvalidRequestError{Op: op, Reason: fmt.Sprintf(format, args...)}
}

// decodeParams decodes params strictly into v: they must be one JSON object
// with no unknown fields and nothing after it.
func decodeParams(op string, params json.RawMessage, v any) error {
	trimmed := bytes.TrimSpace(params)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return invalidf(op, "params are required")
	}
	if trimmed[0] != '{' {
		return invalidf(op, "params must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf(op, "params: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf(op, "params: data after the JSON object")
	}
	return nil
}

// validPathID reports whether s is a safe campaign or contact list id:
// 1–64 of A–Z a–z 0–9 and '-' (Genesys ids are UUIDs).
func validPathID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// validContactID reports whether s is a safe contact id: 1–64 of
// A–Z a–z 0–9 and - _ . ~ (URL-unreserved, so no ',' to split the
// contactIds list and nothing that needs escaping).
func validContactID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '~' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func checkPathID(op, field, id string) error {
	if id == "" {
		return invalidf(op, "%s is required", field)
	}
	if !validPathID(id) {
		return invalidf(op, "%s %q: want 1-%d of A-Z a-z 0-9 -", field, truncate(id, 80), maxIDLen)
	}
	return nil
}

func campaignPath(id string) string {
	return "/api/v2/outbound/campaigns/" + url.PathEscape(id)
}

func contactsPath(listID string) string {
	return "/api/v2/outbound/contactlists/" + url.PathEscape(listID) + "/contacts"
}

type campaignParams struct {
	CampaignID string `json:"campaign_id"`
}

func campaignRequest(op string, params json.RawMessage, method, suffix string) (prepared, error) {
	var p campaignParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	if err := checkPathID(op, "campaign_id", p.CampaignID); err != nil {
		return prepared{}, err
	}
	return prepared{op: op, req: request{method: method, path: campaignPath(p.CampaignID) + suffix}}, nil
}

type setStatusParams struct {
	CampaignID   string `json:"campaign_id"`
	Status       string `json:"status"`
	WaitUntilOff string `json:"wait_until_off"`
}

func setStatusRequest(params json.RawMessage) (prepared, error) {
	const op = OpCampaignSetStatus
	var p setStatusParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	if err := checkPathID(op, "campaign_id", p.CampaignID); err != nil {
		return prepared{}, err
	}
	switch p.Status {
	case StatusOn, StatusOff:
	case "":
		return prepared{}, invalidf(op, "status is required (on or off)")
	case StatusStopping, StatusComplete, StatusInvalid, StatusForcedOff, StatusForcedStopping:
		return prepared{}, invalidf(op, "status %q is set by the platform, not by callers: want on or off (turning a campaign off stops it)", p.Status)
	default:
		return prepared{}, invalidf(op, "status %q is not a campaign status: want on or off", truncate(p.Status, 40))
	}
	wait, err := parseWaitUntilOff(op, p.WaitUntilOff)
	if err != nil {
		return prepared{}, err
	}
	if wait > 0 && p.Status != StatusOff {
		return prepared{}, invalidf(op, "wait_until_off goes with status off")
	}
	// The request is the GET; Client.setStatus builds the PUT from its answer.
	return prepared{op: op, req: request{method: http.MethodGet, path: campaignPath(p.CampaignID)},
		campaignID: p.CampaignID, status: p.Status, waitOff: wait}, nil
}

type stopParams struct {
	CampaignID   string `json:"campaign_id"`
	WaitUntilOff string `json:"wait_until_off"`
}

// stopRequest builds POST /api/v2/outbound/campaigns/{id}/stop. The platform
// stops a campaign asynchronously (on → stopping → off); wait_until_off (a
// duration, at most MaxWaitUntilOff) makes the job succeed only once the
// campaign reports off.
func stopRequest(params json.RawMessage) (prepared, error) {
	const op = OpCampaignStop
	var p stopParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	if err := checkPathID(op, "campaign_id", p.CampaignID); err != nil {
		return prepared{}, err
	}
	wait, err := parseWaitUntilOff(op, p.WaitUntilOff)
	if err != nil {
		return prepared{}, err
	}
	return prepared{op: op, req: request{method: http.MethodPost, path: campaignPath(p.CampaignID) + "/stop"},
		campaignID: p.CampaignID, waitOff: wait}, nil
}

// parseWaitUntilOff reads wait_until_off: "" or "0s" for no wait, else a Go
// duration of at least a second and at most MaxWaitUntilOff.
func parseWaitUntilOff(op, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return 0, invalidf(op, "wait_until_off %q: want a duration such as \"2m\"", truncate(v, 40))
	case d == 0:
		return 0, nil
	case d < time.Second || d > MaxWaitUntilOff:
		return 0, invalidf(op, "wait_until_off %s: want 1s to %s", d, MaxWaitUntilOff)
	}
	return d, nil
}

// MaxProgressCampaigns is the most campaign ids one campaign.progress job
// may ask about with campaign_ids (one POST /api/v2/outbound/campaigns/progress).
// The platform documents no limit; its listings page at 100.
const MaxProgressCampaigns = 100

type progressParams struct {
	CampaignID  string   `json:"campaign_id"`
	CampaignIDs []string `json:"campaign_ids"`
}

// progressRequest builds GET /api/v2/outbound/campaigns/{id}/progress for one
// campaign_id, or POST /api/v2/outbound/campaigns/progress with the array of
// campaign_ids: one request for many campaigns.
func progressRequest(params json.RawMessage) (prepared, error) {
	const op = OpCampaignProgress
	var p progressParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	switch {
	case p.CampaignID != "" && p.CampaignIDs != nil:
		return prepared{}, invalidf(op, "give campaign_id or campaign_ids, not both")
	case p.CampaignIDs == nil:
		if p.CampaignID == "" {
			return prepared{}, invalidf(op, "campaign_id (or campaign_ids) is required")
		}
		if err := checkPathID(op, "campaign_id", p.CampaignID); err != nil {
			return prepared{}, err
		}
		return prepared{op: op, req: request{method: http.MethodGet, path: campaignPath(p.CampaignID) + "/progress"}}, nil
	}
	switch n := len(p.CampaignIDs); {
	case n == 0:
		return prepared{}, invalidf(op, "campaign_ids: want 1-%d ids, got none", MaxProgressCampaigns)
	case n > MaxProgressCampaigns:
		return prepared{}, invalidf(op, "campaign_ids: want 1-%d ids, got %d (split the job)", MaxProgressCampaigns, n)
	}
	seen := make(map[string]int, len(p.CampaignIDs))
	for i, id := range p.CampaignIDs {
		if !validPathID(id) {
			return prepared{}, invalidf(op, "campaign_ids[%d] %q: want 1-%d of A-Z a-z 0-9 -", i, truncate(id, 80), maxIDLen)
		}
		if j, dup := seen[id]; dup {
			return prepared{}, invalidf(op, "campaign_ids[%d] %q repeats campaign_ids[%d]", i, id, j)
		}
		seen[id] = i
	}
	body, err := marshalBody(p.CampaignIDs)
	if err != nil {
		return prepared{}, invalidf(op, "campaign_ids: %v", err)
	}
	return prepared{op: op, req: request{method: http.MethodPost, path: "/api/v2/outbound/campaigns/progress", body: body}}, nil
}

// marshalBody encodes v as compact JSON without HTML escaping.
func marshalBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// hasControl reports whether s contains an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// truncate shortens s to at most n bytes (on a rune boundary) for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
