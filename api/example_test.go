package api_test

import (
	"errors"
	"fmt"

	"github.com/orgdispatch/orgdispatch/api"
)

func ExampleCheckListen() {
	// Loopback without a token is fine; every interface needs a token.
	fmt.Println(api.CheckListen("127.0.0.1:8080", "", false))
	err := api.CheckListen(":8080", "", false)
	fmt.Println(errors.Is(err, api.ErrInsecureListen))
	fmt.Println(api.CheckListen(":8080", "a-long-random-token", false))
	// Output:
	// <nil>
	// true
	// <nil>
}
