"""The replay: the Pulumi program applied to a real Docker engine through Pulumi's mock runtime."""
