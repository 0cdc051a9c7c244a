"""Bulk inference through SageMaker Batch Transform: the manifest a user writes, the inputs a
transform job reads, and the results, rejections and summary a batch leaves in the inference bucket
(`layout`). Used by the PrepareBatch and SummarizeBatch functions of the batch state machine."""
