module kubeboot.test/goduration

go 1.22
