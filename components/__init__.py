"""ComponentResources and helpers of the companyNews infrastructure program."""
