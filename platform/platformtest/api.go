package platformtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	campaignsPath    = "/api/v2/outbound/campaigns/"
	contactListsPath = "/api/v2/outbound/contactlists/"
)

// malformed is the platform's message for a body it cannot parse.
const malformed = "The request could not be understood by the server due to malformed syntax."

// route answers an authenticated, admitted API request from org o's state.
// Checks run in this order: 413 (body too large), 404 (unknown path or
// id), 405, 400 (invalid body or query), 409 (version conflict), 400
// (refused status transition).
func (s *Simulator) route(r *http.Request, now time.Time, o *org) answer {
	if r.ContentLength > MaxBodyBytes {
		_, a := s.readBody(r)
		return *a
	}
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, campaignsPath); ok {
		id, action, sub := strings.Cut(rest, "/")
		if id == "" || (sub && (action == "" || strings.Contains(action, "/"))) {
			return s.notFound(p)
		}
		switch {
		case !sub && id == "progress":
			if r.Method != http.MethodPost {
				return s.notAllowed(http.MethodPost)
			}
			return s.progressMany(r, now, o)
		case !sub:
			switch r.Method {
			case http.MethodGet:
				return s.getCampaign(now, o, id)
			case http.MethodPut:
				return s.putCampaign(r, now, o, id)
			}
			return s.notAllowed(http.MethodGet + ", " + http.MethodPut)
		case action == "start" || action == "stop":
			if r.Method != http.MethodPost {
				return s.notAllowed(http.MethodPost)
			}
			return s.startStop(now, o, id, action == "start")
		case action == "progress" || action == "stats":
			if r.Method != http.MethodGet {
				return s.notAllowed(http.MethodGet)
			}
			return s.campaignReport(now, o, id, action == "stats")
		}
		return s.notFound(p)
	}
	if p == limitsPath || strings.HasPrefix(p, limitsPath+"/") {
		return s.serveLimits(r, p)
	}
	if rest, ok := strings.CutPrefix(p, contactListsPath); ok {
		id, action, _ := strings.Cut(rest, "/")
		if id == "" || action != "contacts" {
			return s.notFound(p)
		}
		switch r.Method {
		case http.MethodPost:
			return s.addContacts(r, now, o, id)
		case http.MethodDelete:
			return s.removeContacts(r, o, id)
		}
		return s.notAllowed(http.MethodPost + ", " + http.MethodDelete)
	}
	return s.notFound(p)
}

func (s *Simulator) notFound(path string) answer {
	return s.fail(http.StatusNotFound, "not.found", "No resource found at "+path)
}

func (s *Simulator) entityNotFound(kind, id string) answer {
	return s.fail(http.StatusNotFound, "not.found", fmt.Sprintf("%s %s not found", kind, id))
}

func (s *Simulator) notAllowed(allow string) answer {
	a := s.fail(http.StatusMethodNotAllowed, "method.not.allowed", "Method not allowed; allowed: "+allow)
	a.header = [][2]string{{"Allow", allow}}
	return a
}

func (s *Simulator) badRequest(msg string) answer {
	return s.fail(http.StatusBadRequest, "bad.request", msg)
}

// getCampaign is GET /api/v2/outbound/campaigns/{id}.
func (s *Simulator) getCampaign(now time.Time, o *org, id string) answer {
	o.mu.Lock()
	cs := o.campaign(id, now, s.cfg.AutoCreate)
	if cs == nil {
		o.mu.Unlock()
		return s.entityNotFound("Campaign", id)
	}
	v := cs.view()
	o.mu.Unlock()
	return s.ok(v)
}

// campaignUpdate is a PUT body; pointers tell absent from zero.
type campaignUpdate struct {
	ID                string        `json:"id"`
	Name              string        `json:"name"`
	Version           *int          `json:"version"`
	CampaignStatus    string        `json:"campaignStatus"`
	ContactList       *Ref          `json:"contactList"`
	Queue             *Ref          `json:"queue"`
	DialingMode       string        `json:"dialingMode"`
	PhoneColumns      []PhoneColumn `json:"phoneColumns"`
	CallerName        string        `json:"callerName"`
	CallerAddress     string        `json:"callerAddress"`
	OutboundLineCount int           `json:"outboundLineCount"`
	Priority          int           `json:"priority"`
	AlwaysRunning     bool          `json:"alwaysRunning"`
}

// check returns what is wrong with a PUT body for campaign id, or "".
func (u *campaignUpdate) check(id string) string {
	switch {
	case u.ID != "" && u.ID != id:
		return fmt.Sprintf("The campaign id in the body (%s) does not match the path (%s)", u.ID, id)
	case u.Name == "":
		return "name is required"
	case u.ContactList == nil || u.ContactList.ID == "":
		return "contactList is required"
	case u.DialingMode == "":
		return "dialingMode is required"
	case !slices.Contains(DialingModes, u.DialingMode):
		return fmt.Sprintf("dialingMode %q is not one of %s", u.DialingMode, strings.Join(DialingModes, ", "))
	case u.CampaignStatus == "":
		return "campaignStatus is required"
	case u.CampaignStatus != CampaignOn && u.CampaignStatus != CampaignOff:
		return fmt.Sprintf("campaignStatus %q cannot be set; it must be %q or %q", u.CampaignStatus, CampaignOn, CampaignOff)
	}
	return ""
}

// putCampaign is PUT /api/v2/outbound/campaigns/{id}: a full replacement of
// the modeled fields, accepted only with the current version and, unless
// Config.LenientStatusTransitions, a permitted status transition (checked
// after the version). The query parameter useMaxCallsPerAgentDecimal (which
// Genesys's Terraform provider always sends) must be a boolean if present;
// the simulator does not model maxCallsPerAgent.
func (s *Simulator) putCampaign(r *http.Request, now time.Time, o *org, id string) answer {
	body, fail := s.readBody(r)
	if fail != nil {
		return *fail
	}
	var u campaignUpdate
	decodeErr := json.Unmarshal(body, &u)

	o.mu.Lock()
	defer o.mu.Unlock()
	cs := o.campaign(id, now, s.cfg.AutoCreate)
	if cs == nil {
		return s.entityNotFound("Campaign", id)
	}
	if a, bad := s.checkBoolQuery(r, "useMaxCallsPerAgentDecimal"); bad {
		return a
	}
	if decodeErr != nil {
		return s.badRequest(malformed)
	}
	if msg := u.check(id); msg != "" {
		return s.badRequest(msg)
	}
	if u.Version == nil || *u.Version != cs.c.Version {
		got := "none"
		if u.Version != nil {
			got = strconv.Itoa(*u.Version)
		}
		return s.fail(http.StatusConflict, "conflict",
			fmt.Sprintf("Campaign version %s does not match the current version %d", got, cs.c.Version))
	}
	if o.list(u.ContactList.ID, s.cfg.AutoCreate) == nil {
		return s.badRequest(fmt.Sprintf("contact list %s not found", u.ContactList.ID))
	}
	if a, refused := s.checkTransition(cs, u.CampaignStatus); refused {
		return a
	}
	c := &cs.c
	c.Name = u.Name
	c.ContactList = Ref{ID: u.ContactList.ID, Name: u.ContactList.Name}
	c.Queue = nil
	if u.Queue != nil {
		q := Ref{ID: u.Queue.ID, Name: u.Queue.Name}
		c.Queue = &q
	}
	c.DialingMode = u.DialingMode
	c.PhoneColumns = u.PhoneColumns
	c.CallerName, c.CallerAddress = u.CallerName, u.CallerAddress
	c.OutboundLineCount, c.Priority, c.AlwaysRunning = u.OutboundLineCount, u.Priority, u.AlwaysRunning
	if u.CampaignStatus == CampaignOn {
		cs.turnOn(now)
	} else {
		cs.turnOff(now, o.stopDelay)
	}
	c.Version++
	c.DateModified = now
	o.settle(cs, now)
	return s.ok(cs.view())
}

// startStop is POST /api/v2/outbound/campaigns/{id}/start and /stop, the
// same status changes as a PUT of "on" and "off": start turns the campaign
// "on"; stop turns an "on" campaign "stopping", which is "off"
// Config.StopDelay later. Unless Config.LenientStatusTransitions, both
// follow the PUT's rule — start only an "off", "complete", "invalid" or
// "forced_off" campaign, stop only an "on" one — and refuse anything else
// (starting an "on" campaign, stopping a "stopping" or "off" one) with 400;
// lenient, either is a no-op when the campaign is already there. A status
// change bumps the version. The answer is 204 without a body.
func (s *Simulator) startStop(now time.Time, o *org, id string, start bool) answer {
	o.mu.Lock()
	defer o.mu.Unlock()
	cs := o.campaign(id, now, s.cfg.AutoCreate)
	if cs == nil {
		return s.entityNotFound("Campaign", id)
	}
	to := CampaignOff
	if start {
		to = CampaignOn
	}
	if a, refused := s.checkTransition(cs, to); refused {
		return a
	}
	var changed bool
	if start {
		changed = cs.turnOn(now)
	} else {
		changed = cs.turnOff(now, o.stopDelay)
	}
	if changed {
		cs.c.Version++
		cs.c.DateModified = now
	}
	return noContent()
}

// checkTransition refuses setting cs to status to with 400, unless
// Config.LenientStatusTransitions or canTurn allows it.
func (s *Simulator) checkTransition(cs *campaignState, to string) (answer, bool) {
	if from := cs.c.CampaignStatus; !s.cfg.LenientStatusTransitions && !canTurn(from, to) {
		return s.badRequest(fmt.Sprintf("The status of campaign %s cannot be changed from %s to %s", cs.c.ID, from, to)), true
	}
	return answer{}, false
}

// checkBoolQuery refuses with 400 a query parameter name that is present
// but not a boolean.
func (s *Simulator) checkBoolQuery(r *http.Request, name string) (answer, bool) {
	if q := r.URL.Query(); q.Has(name) {
		if _, err := strconv.ParseBool(q.Get(name)); err != nil {
			return s.badRequest(fmt.Sprintf("query parameter %s must be true or false", name)), true
		}
	}
	return answer{}, false
}

// campaignReport is GET …/campaigns/{id}/progress and …/stats.
func (s *Simulator) campaignReport(now time.Time, o *org, id string, wantStats bool) answer {
	o.mu.Lock()
	cs := o.campaign(id, now, s.cfg.AutoCreate)
	if cs == nil {
		o.mu.Unlock()
		return s.entityNotFound("Campaign", id)
	}
	var v any
	if wantStats {
		v = o.stats(cs)
	} else {
		v = o.progress(cs)
	}
	o.mu.Unlock()
	return s.ok(v)
}

// progressMany is POST /api/v2/outbound/campaigns/progress: a JSON array of
// campaign ids in, their progress out (404 if any is unknown).
func (s *Simulator) progressMany(r *http.Request, now time.Time, o *org) answer {
	body, fail := s.readBody(r)
	if fail != nil {
		return *fail
	}
	var ids []string
	if err := json.Unmarshal(body, &ids); err != nil {
		return s.badRequest(malformed)
	}
	if len(ids) == 0 {
		return s.badRequest("The body must list at least one campaign id")
	}
	out := make([]progress, 0, len(ids))
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		if id == "" {
			return s.badRequest("A campaign id is empty")
		}
		cs := o.campaign(id, now, s.cfg.AutoCreate)
		if cs == nil {
			return s.entityNotFound("Campaign", id)
		}
		out = append(out, o.progress(cs))
	}
	return s.ok(out)
}

// contactIn is one element of an add-contacts body.
type contactIn struct {
	ID            string         `json:"id"`
	ContactListID string         `json:"contactListId"`
	Data          map[string]any `json:"data"`
	Callable      *bool          `json:"callable"`
}

// addContacts is POST /api/v2/outbound/contactlists/{id}/contacts: 1 to
// MaxContactsPerRequest contacts, each with a data object whose values are
// all strings (the platform's map of string to string; a number, boolean,
// null, object or array is 400 naming the contact and column); a contact whose
// id exists is replaced; callable defaults to true. The query parameters
// priority, clearSystemData and doNotQueue must be booleans if present (the
// simulator does not model their effect). Answers the stored contacts.
func (s *Simulator) addContacts(r *http.Request, now time.Time, o *org, listID string) answer {
	body, fail := s.readBody(r)
	if fail != nil {
		return *fail
	}
	var in []contactIn
	decodeErr := json.Unmarshal(body, &in)

	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.list(listID, s.cfg.AutoCreate)
	if l == nil {
		return s.entityNotFound("Contact list", listID)
	}
	for _, name := range []string{"priority", "clearSystemData", "doNotQueue"} {
		if a, bad := s.checkBoolQuery(r, name); bad {
			return a
		}
	}
	switch {
	case decodeErr != nil:
		return s.badRequest(malformed)
	case len(in) == 0:
		return s.badRequest("The body must contain at least one contact")
	case len(in) > MaxContactsPerRequest:
		return s.badRequest(fmt.Sprintf("At most %d contacts may be added per request, got %d", MaxContactsPerRequest, len(in)))
	}
	data := make([]map[string]string, len(in))
	for i, c := range in {
		switch {
		case c.Data == nil:
			return s.badRequest(fmt.Sprintf("contact %d has no data object", i))
		case c.ContactListID != "" && c.ContactListID != listID:
			return s.badRequest(fmt.Sprintf("contact %d names contact list %s, not %s", i, c.ContactListID, listID))
		}
		data[i] = make(map[string]string, len(c.Data))
		for _, col := range slices.Sorted(maps.Keys(c.Data)) {
			v, ok := c.Data[col].(string)
			if !ok {
				return s.badRequest(fmt.Sprintf("contact %d: the value of data column %q must be a string, not %s", i, col, jsonKind(c.Data[col])))
			}
			data[i][col] = v
		}
	}
	out := make([]Contact, len(in))
	for i, c := range in {
		callable := c.Callable == nil || *c.Callable
		out[i] = o.upsert(l, Contact{ID: c.ID, ContactListID: listID, Data: data[i], Callable: callable})
	}
	return s.ok(out)
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// removeContacts is DELETE /api/v2/outbound/contactlists/{id}/contacts
// ?contactIds=a,b,c: deletes the listed contacts that exist (unknown ids are
// ignored); 200 without a body. The simulator does not model "in use by a
// campaign": every listed contact is deleted.
func (s *Simulator) removeContacts(r *http.Request, o *org, listID string) answer {
	var ids []string
	for _, v := range r.URL.Query()["contactIds"] {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.list(listID, s.cfg.AutoCreate)
	if l == nil {
		return s.entityNotFound("Contact list", listID)
	}
	if len(ids) == 0 {
		return s.badRequest("query parameter contactIds is required")
	}
	for _, id := range ids {
		l.remove(id)
	}
	return s.ok(nil)
}
