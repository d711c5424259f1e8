package dispatcher_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }
