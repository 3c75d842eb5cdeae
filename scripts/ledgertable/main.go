// Command ledgertable creates the ledger table in a Tablestore instance, if it
// does not exist yet, with the credentials of the environment:
//
//	ALIBABA_CLOUD_ACCESS_KEY_ID=… ALIBABA_CLOUD_ACCESS_KEY_SECRET=… \
//	go run ./scripts/ledgertable -endpoint https://<instance>.<region>.ots.aliyuncs.com -instance <instance> -table sag_upgrade_ledger
//
// The schema is documented in internal/tablestore (package comment) and
// deploy/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sag-upgrade/sag-upgrade/handler"
	"github.com/sag-upgrade/sag-upgrade/internal/tablestore"
)

func main() {
	endpoint := flag.String("endpoint", os.Getenv("LEDGER_ENDPOINT"), "Tablestore instance endpoint (LEDGER_ENDPOINT)")
	instance := flag.String("instance", os.Getenv("LEDGER_INSTANCE"), "instance name (LEDGER_INSTANCE)")
	table := flag.String("table", os.Getenv("LEDGER_TABLE"), "table name (LEDGER_TABLE)")
	flag.Parse()
	l, err := tablestore.New(tablestore.Options{Endpoint: *endpoint, Instance: *instance, Table: *table, Credentials: handler.Credentials{
		AccessKeyID:     os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"),
		AccessKeySecret: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
		SecurityToken:   os.Getenv("ALIBABA_CLOUD_SECURITY_TOKEN"),
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledgertable:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.CreateTable(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ledgertable:", err)
		os.Exit(1)
	}
	fmt.Printf("ledger table %s is ready in %s\n", *table, *instance)
}
