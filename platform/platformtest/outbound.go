package platformtest

import (
	"cmp"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Campaign statuses (campaignStatus). Only "on" and "off" may be requested
// with PUT; the others are reached by the simulator or set with AddCampaign.
const (
	CampaignOn             = "on"
	CampaignStopping       = "stopping"
	CampaignOff            = "off"
	CampaignComplete       = "complete"
	CampaignInvalid        = "invalid"
	CampaignForcedOff      = "forced_off"
	CampaignForcedStopping = "forced_stopping"
)

// DialingModes lists the dialingMode values a campaign may have.
var DialingModes = []string{"agentless", "preview", "power", "predictive", "progressive", "external"}

// dialInterval is how often a campaign that is "on" dials its next
// callable contact, by the simulator's clock.
const dialInterval = time.Second

// Ref is a reference to another entity, as the platform writes one.
type Ref struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	SelfURI string `json:"selfUri,omitempty"`
}

// PhoneColumn names a contact-list column that holds a phone number.
type PhoneColumn struct {
	ColumnName string `json:"columnName"`
	Type       string `json:"type,omitempty"`
}

// Campaign is an outbound campaign: the subset of the platform's campaign
// fields the simulator models. GET returns it as JSON; PUT replaces it.
type Campaign struct {
	ID                string        `json:"id"`
	Name              string        `json:"name"`
	Version           int           `json:"version"`
	CampaignStatus    string        `json:"campaignStatus"`
	ContactList       Ref           `json:"contactList"`
	Queue             *Ref          `json:"queue,omitempty"`
	DialingMode       string        `json:"dialingMode"`
	PhoneColumns      []PhoneColumn `json:"phoneColumns"`
	CallerName        string        `json:"callerName,omitempty"`
	CallerAddress     string        `json:"callerAddress,omitempty"`
	OutboundLineCount int           `json:"outboundLineCount,omitempty"`
	Priority          int           `json:"priority,omitempty"`
	AlwaysRunning     bool          `json:"alwaysRunning"`
	DateCreated       time.Time     `json:"dateCreated"`
	DateModified      time.Time     `json:"dateModified"`
	SelfURI           string        `json:"selfUri,omitempty"`
}

// Contact is one contact of a contact list. Data maps column names to
// values, all strings, as on the platform.
type Contact struct {
	ID            string            `json:"id"`
	ContactListID string            `json:"contactListId"`
	Data          map[string]string `json:"data"`
	Callable      bool              `json:"callable"`
}

// campaignState is a campaign plus its dialing progress.
type campaignState struct {
	c             Campaign
	dialed        int       // contacts dialed so far
	dialFrom      time.Time // while on: dialing accounted up to here
	stoppingUntil time.Time // while stopping: off from here on
}

// contactList is one contact list's contacts, in insertion order by seq.
type contactList struct {
	contacts map[string]*contactEntry
	seq      uint64
	callable int
}

type contactEntry struct {
	c   Contact
	seq uint64
}

// org is one org's outbound state.
type org struct {
	id        string
	buckets   *buckets      // the org's windows under ScopeOrg
	stopDelay time.Duration // stopping → off (or forced_stopping → forced_off) after this

	mu        sync.Mutex
	campaigns map[string]*campaignState
	lists     map[string]*contactList
	rng       *rand.Rand // contact ids
}

func newOrg(id string, seed int64, endpointLimits int, stopDelay time.Duration) *org {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return &org{
		id:        id,
		buckets:   newBuckets(endpointLimits),
		stopDelay: stopDelay,
		campaigns: make(map[string]*campaignState),
		lists:     make(map[string]*contactList),
		rng:       rand.New(rand.NewPCG(uint64(seed), h.Sum64())),
	}
}

// AddCampaign adds or replaces a campaign in org. Zero fields get defaults:
// version 1, status "off", name = id, dialingMode "preview", the contact
// list with the campaign's own id, creation time now. The contact list is
// created (empty) if it does not exist.
func (s *Simulator) AddCampaign(orgID string, c Campaign) {
	if c.ID == "" {
		panic("platformtest: AddCampaign: campaign without id")
	}
	o := s.org(orgID)
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.putCampaign(c, now)
}

// Campaign returns org's campaign id as the API would show it now.
func (s *Simulator) Campaign(orgID, id string) (Campaign, bool) {
	o := s.findOrg(orgID)
	if o == nil {
		return Campaign{}, false
	}
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	cs := o.campaign(id, now, false)
	if cs == nil {
		return Campaign{}, false
	}
	return cs.view(), true
}

// AddContactList creates an empty contact list in org unless it exists.
func (s *Simulator) AddContactList(orgID, id string) {
	if id == "" {
		panic("platformtest: AddContactList: empty id")
	}
	o := s.org(orgID)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list(id, true)
}

// Contacts returns the contacts of org's contact list listID in the order
// they were first added; nil if the list does not exist.
func (s *Simulator) Contacts(orgID, listID string) []Contact {
	o := s.findOrg(orgID)
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lists[listID]
	if l == nil {
		return nil
	}
	entries := slices.SortedFunc(maps.Values(l.contacts), func(a, b *contactEntry) int {
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]Contact, len(entries))
	for i, e := range entries {
		out[i] = e.c
		out[i].Data = maps.Clone(e.c.Data)
	}
	return out
}

// putCampaign stores c with defaults applied; o.mu is held.
func (o *org) putCampaign(c Campaign, now time.Time) *campaignState {
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.Version == 0 {
		c.Version = 1
	}
	if c.CampaignStatus == "" {
		c.CampaignStatus = CampaignOff
	}
	if c.DialingMode == "" {
		c.DialingMode = "preview"
	}
	if c.ContactList.ID == "" {
		c.ContactList.ID = c.ID
	}
	if c.DateCreated.IsZero() {
		c.DateCreated = now
	}
	if c.DateModified.IsZero() {
		c.DateModified = now
	}
	c.SelfURI = ""
	c.ContactList.SelfURI = ""
	c.PhoneColumns = slices.Clone(c.PhoneColumns)
	if c.Queue != nil {
		q := *c.Queue
		c.Queue = &q
	}
	o.list(c.ContactList.ID, true)
	cs := &campaignState{c: c, dialFrom: now}
	if c.CampaignStatus == CampaignStopping || c.CampaignStatus == CampaignForcedStopping {
		cs.stoppingUntil = now.Add(o.stopDelay)
	}
	o.campaigns[c.ID] = cs
	return cs
}

// campaign returns campaign id settled to now, creating it if create is
// true; nil if it does not exist. o.mu is held.
func (o *org) campaign(id string, now time.Time, create bool) *campaignState {
	cs := o.campaigns[id]
	if cs == nil {
		if !create {
			return nil
		}
		cs = o.putCampaign(Campaign{ID: id}, now)
	}
	o.settle(cs, now)
	return cs
}

// list returns contact list id, creating it if create is true. o.mu is held.
func (o *org) list(id string, create bool) *contactList {
	l := o.lists[id]
	if l == nil && create {
		l = &contactList{contacts: make(map[string]*contactEntry)}
		o.lists[id] = l
	}
	return l
}

// settle advances cs to now: an "on" campaign dials one callable contact per
// dialInterval; a stopping one turns "off" (a forced_stopping one
// "forced_off") after o.stopDelay. o.mu is held.
func (o *org) settle(cs *campaignState, now time.Time) {
	switch cs.c.CampaignStatus {
	case CampaignOn:
		if n := now.Sub(cs.dialFrom) / dialInterval; n > 0 {
			cs.dialed += int(n)
			cs.dialFrom = cs.dialFrom.Add(n * dialInterval)
		}
	case CampaignStopping, CampaignForcedStopping:
		if !now.Before(cs.stoppingUntil) {
			if cs.c.CampaignStatus == CampaignStopping {
				cs.c.CampaignStatus = CampaignOff
			} else {
				cs.c.CampaignStatus = CampaignForcedOff
			}
		}
	}
	callable := 0
	if l := o.lists[cs.c.ContactList.ID]; l != nil {
		callable = l.callable
	}
	cs.dialed = min(cs.dialed, callable)
}

// turnOn starts dialing; it reports whether the status changed.
func (cs *campaignState) turnOn(now time.Time) bool {
	if cs.c.CampaignStatus == CampaignOn {
		return false
	}
	cs.c.CampaignStatus = CampaignOn
	cs.dialFrom = now
	return true
}

// turnOff moves an "on" campaign to "stopping" for stopDelay (other
// statuses stay); it reports whether the status changed.
func (cs *campaignState) turnOff(now time.Time, stopDelay time.Duration) bool {
	if cs.c.CampaignStatus != CampaignOn {
		return false
	}
	cs.c.CampaignStatus = CampaignStopping
	cs.stoppingUntil = now.Add(stopDelay)
	return true
}

// canTurn reports whether the strict status rule lets a campaign in status
// from be set to to: "off" only from "on"; "on" only from "off",
// "complete", "invalid" or "forced_off" — the transitions Genesys's
// Terraform provider relies on.
func canTurn(from, to string) bool {
	switch to {
	case CampaignOff:
		return from == CampaignOn
	case CampaignOn:
		switch from {
		case CampaignOff, CampaignComplete, CampaignInvalid, CampaignForcedOff:
			return true
		}
	}
	return false
}

// view is the campaign as the API shows it.
func (cs *campaignState) view() Campaign {
	c := cs.c
	c.SelfURI = campaignsPath + c.ID
	c.ContactList.SelfURI = contactListsPath + c.ContactList.ID
	c.PhoneColumns = slices.Clone(c.PhoneColumns)
	if c.PhoneColumns == nil {
		c.PhoneColumns = []PhoneColumn{}
	}
	if c.Queue != nil {
		q := *c.Queue
		c.Queue = &q
	}
	return c
}

// progress is the campaign-progress body.
type progress struct {
	Campaign                 Ref `json:"campaign"`
	ContactList              Ref `json:"contactList"`
	NumberOfContactsCalled   int `json:"numberOfContactsCalled"`
	NumberOfContactsMessaged int `json:"numberOfContactsMessaged"`
	TotalNumberOfContacts    int `json:"totalNumberOfContacts"`
	Percentage               int `json:"percentage"`
}

func (o *org) progress(cs *campaignState) progress {
	total := 0
	if l := o.lists[cs.c.ContactList.ID]; l != nil {
		total = len(l.contacts)
	}
	p := progress{
		Campaign:               Ref{ID: cs.c.ID, SelfURI: campaignsPath + cs.c.ID},
		ContactList:            Ref{ID: cs.c.ContactList.ID, SelfURI: contactListsPath + cs.c.ContactList.ID},
		NumberOfContactsCalled: cs.dialed,
		TotalNumberOfContacts:  total,
	}
	if total > 0 {
		p.Percentage = cs.dialed * 100 / total
	}
	return p
}

// contactRate and stats are the campaign-stats body.
type contactRate struct {
	Attempts     int     `json:"attempts"`
	Connects     int     `json:"connects"`
	ConnectRatio float64 `json:"connectRatio"`
}

type stats struct {
	ContactRate           contactRate `json:"contactRate"`
	IdleAgents            int         `json:"idleAgents"`
	EffectiveIdleAgents   float64     `json:"effectiveIdleAgents"`
	AdjustedCallsPerAgent float64     `json:"adjustedCallsPerAgent"`
	OutstandingCalls      int         `json:"outstandingCalls"`
	ScheduledCalls        int         `json:"scheduledCalls"`
}

// stats models a small campaign: three in five dialed contacts connect; an
// "on" campaign has two idle agents and, while callable contacts remain,
// one outstanding call.
func (o *org) stats(cs *campaignState) stats {
	st := stats{ContactRate: contactRate{Attempts: cs.dialed, Connects: cs.dialed * 3 / 5}}
	if cs.dialed > 0 {
		st.ContactRate.ConnectRatio = float64(st.ContactRate.Connects) / float64(cs.dialed)
	}
	if cs.c.CampaignStatus == CampaignOn {
		st.IdleAgents = 2
		st.EffectiveIdleAgents = 2
		st.AdjustedCallsPerAgent = 1
		if l := o.lists[cs.c.ContactList.ID]; l != nil && cs.dialed < l.callable {
			st.OutstandingCalls = 1
		}
	}
	return st
}

// upsert adds c to l or replaces the contact with its id; o.mu is held.
func (o *org) upsert(l *contactList, c Contact) Contact {
	if c.ID == "" {
		c.ID = o.newID()
	}
	if old := l.contacts[c.ID]; old != nil {
		if old.c.Callable {
			l.callable--
		}
		old.c = c
	} else {
		l.seq++
		l.contacts[c.ID] = &contactEntry{c: c, seq: l.seq}
	}
	if c.Callable {
		l.callable++
	}
	return c
}

// remove deletes the contact id from l, if present; o.mu is held.
func (l *contactList) remove(id string) {
	if e := l.contacts[id]; e != nil {
		if e.c.Callable {
			l.callable--
		}
		delete(l.contacts, id)
	}
}

// newID returns a random (seeded) UUID-shaped id; o.mu is held.
func (o *org) newID() string {
	hi, lo := o.rng.Uint64(), o.rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // variant 10
	const hexdigits = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[j] = '-'
			j++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		b[j] = hexdigits[nib]
		j++
	}
	return string(b[:])
}
