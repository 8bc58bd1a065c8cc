module github.com/hbdmon/hbd/examples

go 1.26.0

require github.com/hbdmon/hbd/sdk v0.0.0

replace github.com/hbdmon/hbd/sdk => ../sdk
