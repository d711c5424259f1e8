package dispatcher_test

import (
	"os"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// A CRM that publishes for two orgs gets a nats-server user that can
// publish only their jobs and read only their events.
func ExampleWriteNATSAuth() {
	cfg := dispatcher.NATSAuthConfig{Producers: []dispatcher.Producer{{Name: "crm", Tenants: []string{"org_2", "org_1"}}}}
	if err := dispatcher.WriteNATSAuth(os.Stdout, dispatcher.MustNames(""), cfg, []string{"org_1", "org_2", "org_3"}); err != nil {
		panic(err)
	}
	// Output:
	// # nats-server accounts for orgdispatch (prefix orgdispatch), written by `orgdispatch nats-config`.
	// # Passwords come from the environment of nats-server (never this file):
	// #   NATS_PASSWORD_ORGDISPATCH for orgdispatch, NATS_PASSWORD_CRM for crm.
	// # A producer connects with its inbox prefix (nats.CustomInboxPrefix("_INBOX_<name>"), nats --inbox-prefix).
	// accounts {
	//   ORGDISPATCH {
	//     jetstream: enabled
	//     users: [
	//       # workers, API, serve: every subject of the account
	//       { user: "orgdispatch", password: $NATS_PASSWORD_ORGDISPATCH }
	//       # producer crm: tenants org_1, org_2
	//       { user: "crm", password: $NATS_PASSWORD_CRM, permissions: {
	//           publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.KV_orgdispatch_job_status", "orgdispatch.jobs.org_1.>", "$JS.API.CONSUMER.INFO.ORGDISPATCH_JOBS_09.tenant_org_1", "$JS.API.CONSUMER.INFO.ORGDISPATCH_JOBS_09.urgent_org_1", "$JS.API.CONSUMER.INFO.ORGDISPATCH_JOBS_09.bulk_org_1", "$KV.orgdispatch_job_status.org_1.>", "$JS.API.DIRECT.GET.KV_orgdispatch_job_status.$KV.orgdispatch_job_status.org_1.>", "orgdispatch.jobs.org_2.>", "$JS.API.CONSUMER.INFO.ORGDISPATCH_JOBS_00.tenant_org_2", "$JS.API.CONSUMER.INFO.ORGDISPATCH_JOBS_00.urgent_org_2", "$JS.API.CONSUMER.INFO.ORGDISPATCH_JOBS_00.bulk_org_2", "$KV.orgdispatch_job_status.org_2.>", "$JS.API.DIRECT.GET.KV_orgdispatch_job_status.$KV.orgdispatch_job_status.org_2.>"] }
	//           subscribe: { allow: ["_INBOX_crm.>", "orgdispatch.events.org_1.>", "orgdispatch.events.org_2.>"] }
	//       } }
	//     ]
	//   }
	// }
}
