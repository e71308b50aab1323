"""Helpers of the Finance pages: KPIs, periods, the cap form, cap banners."""
