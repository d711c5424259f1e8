package platform

// The operations a job can name. Each maps to one platform request (set_status
// to a GET and a PUT); see Client.Do and ValidateParams.
const (
	OpCampaignStart     = "campaign.start"
	OpCampaignStop      = "campaign.stop"
	OpCampaignSetStatus = "campaign.set_status"
	OpCampaignGet       = "campaign.get"
	OpCampaignProgress  = "campaign.progress"
	OpCampaignStats     = "campaign.stats"
	OpContactsAdd       = "contacts.add"
	OpContactsRemove    = "contacts.remove"
	OpAPIRequest        = "api.request"
)

// Ops lists every operation name, in a stable order.
func Ops() []string {
	return []string{
		OpCampaignStart, OpCampaignStop, OpCampaignSetStatus, OpCampaignGet,
		OpCampaignProgress, OpCampaignStats, OpContactsAdd, OpContactsRemove, OpAPIRequest,
	}
}

// KnownOp reports whether op is one of Ops.
func KnownOp(op string) bool {
	for _, o := range Ops() {
		if o == op {
			return true
		}
	}
	return false
}
