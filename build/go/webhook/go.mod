module local.invalid/akbuild/webhook

go 1.26.0
