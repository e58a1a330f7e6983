-- wrk script for scripts/build-pgo.sh: POST requests with a small JSON body.
wrk.method = "POST"
wrk.body = '{"sku":"A-1","quantity":2,"note":"pgo training"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "https://app.example"
