module local.invalid/akbuild/pause

go 1.26.0
