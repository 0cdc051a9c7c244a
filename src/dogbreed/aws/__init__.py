"""AWS's documented rules as code, read from AWS's own sources (botocore's service models and the
Step Functions documentation), for the checks that hold the product to AWS and for the local cloud,
which follows the same rules. The product (template.yaml, statemachine/, functions/, training_job/)
never imports this package."""
