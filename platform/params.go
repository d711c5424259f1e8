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
	op     string
	req    request
	status string // campaign.set_status: the wanted campaignStatus
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
		return campaignRequest(op, params, http.MethodPost, "/stop")
	case OpCampaignGet:
		return campaignRequest(op, params, http.MethodGet, "")
	case OpCampaignProgress:
		return campaignRequest(op, params, http.MethodGet, "/progress")
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
	CampaignID string `json:"campaign_id"`
	Status     string `json:"status"`
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
	// The request is the GET; Client.setStatus builds the PUT from its answer.
	return prepared{op: op, req: request{method: http.MethodGet, path: campaignPath(p.CampaignID)}, status: p.Status}, nil
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
