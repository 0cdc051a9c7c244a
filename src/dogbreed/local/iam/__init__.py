"""Least privilege proven by execution, on the local cloud: every principal signs its AWS calls with
an access key of its own role (`identity`), the cloud records the calls signed with one (`recorder`),
and `collect` turns them, the state machines' execution histories and what SageMaker and Lambda ran
into the calls `dogbreed.aws.iam.report` evaluates against template.yaml's policies."""
