package platform

import (
	"bytes"
	"encoding/json"
)

// StopsCampaign reports whether a job of op with params stops a campaign:
// campaign.stop, or campaign.set_status with status off. Such jobs are the
// ones an operator cannot wait for (dispatcher.DefaultPriority). Params that
// do not parse count as not stopping; validation reports them.
func StopsCampaign(op string, params json.RawMessage) bool {
	switch op {
	case OpCampaignStop:
		return true
	case OpCampaignSetStatus:
		var p struct {
			Status string `json:"status"`
		}
		if err := json.NewDecoder(bytes.NewReader(params)).Decode(&p); err != nil {
			return false
		}
		return p.Status == StatusOff
	}
	return false
}

// Bulk reports whether op is a bulk operation: one of many alike, sent by
// the thousand (contacts.add, contacts.remove).
func Bulk(op string) bool { return op == OpContactsAdd || op == OpContactsRemove }
