"""The reports' fixed words: titles, limits and the Chinese names of codes and states (the audit report
of a merchant, the periodic report of a jurisdiction)."""

from __future__ import annotations

from complaints.models import Complaint
from escrow.models import JournalEntry
from merchants.models import Filing, Merchant
from refunds.models import Refund

TITLE = "预付卡商户审计报告"
MONTHS = 12  # months of sales and releases charted
LEDGER_LINES = 50  # journal entries in the extract
AUDIT_LINES = 100  # audit events listed
LATEST_COMPLAINTS = 10
HASH_PREFIX = 16

SIGNAL_NAMES = {
    "escrow_outstanding": "托管资金余额",
    "months_owed": "待履约月数",
    "sales_surge": "售卡激增",
    "redemption_drop": "服务释放骤降",
    "discount_depth": "储值卡折扣深度",
    "complaints_per_100_cards": "每百张卡投诉数",
    "overdue_complaints": "逾期未答复投诉",
    "refund_rate": "消费者退卡率",
    "rejected_redemptions": "服务被拒确认率",
    "filing_threshold": "达到备案标准",
    "refunds_late": "退款逾期或失败",
}
LEVEL_NAMES = {"low": "低", "medium": "中", "high": "高"}
CATEGORY_NAMES = {
    Merchant.Category.FITNESS: "健身",
    Merchant.Category.BEAUTY: "美容美发",
    Merchant.Category.EDUCATION: "教育培训",
    Merchant.Category.CATERING: "餐饮",
    Merchant.Category.LAUNDRY: "洗衣",
    Merchant.Category.OTHER: "其他",
}
STATUS_NAMES = {
    Merchant.Status.ACTIVE: "正常经营",
    Merchant.Status.CLOSING: "停业公告期",
    Merchant.Status.CLOSED: "已停业",
}
COMPLAINT_STATE_NAMES = {
    Complaint.State.OPEN: "待答复",
    Complaint.State.RESPONDED: "已答复",
    Complaint.State.OVERDUE: "逾期未答复",
    Complaint.State.CLOSED: "已办结",
}
COMPLAINT_CATEGORY_NAMES = {
    Complaint.Category.REFUND_REFUSED: "拒绝退款",
    Complaint.Category.SERVICE_QUALITY: "服务质量",
    Complaint.Category.SERVICE_UNAVAILABLE: "无法提供服务",
    Complaint.Category.CLOSURE: "停业或失联",
    Complaint.Category.MISLEADING_SALES: "误导销售",
    Complaint.Category.CONTRACT_TERMS: "不公平合同条款",
    Complaint.Category.OTHER: "其他",
}
SOURCE_NAMES = {Complaint.Source.APP: "App", Complaint.Source.HOTLINE: "12345 热线"}
CODE_NAMES = {
    JournalEntry.Code.PURCHASE: "购卡",
    JournalEntry.Code.RELEASE: "服务划付",
    JournalEntry.Code.FEE: "退款手续费",
    JournalEntry.Code.REFUND: "退款",
    JournalEntry.Code.REFUND_PAID: "退款支付",
    JournalEntry.Code.PAYOUT: "商户付款",
    JournalEntry.Code.CORRECTION: "更正",
}
VERB_NAMES = {
    "flag": "标记风险",
    "unflag": "取消风险标记",
    "freeze_sales": "冻结售卡",
    "unfreeze_sales": "解冻售卡",
    "freeze_releases": "冻结资金划付",
    "unfreeze_releases": "解冻资金划付",
    "order_refunds": "责令退款",
    "risk_auto_flag": "高风险自动标记",
    "complaint_create": "登记投诉",
    "complaint_close": "办结投诉",
    "complaint_respond": "商户答复投诉",
    "complaint_overdue": "投诉逾期",
    "refund_merchant_default": "商户违约退卡",
    "refund_retry": "重新发送失败退款",
    "filing_accept": "备案通过",
    "filing_return": "备案退回补正",
    "export": "导出数据",
    "case_open": "立案检查",
    "case_assign": "指派检查员",
    "case_finding_add": "记录检查发现",
    "case_documents_request": "向商户调取材料",
    "case_documents_submit": "商户提交材料",
    "case_measure_link": "关联监管措施",
    "case_close": "结案",
    "login": "登录",
    "login_failed": "登录失败",
    "logout": "退出登录",
    "contact_reveal": "查看消费者完整联系方式",
}
FIELD_NAMES = {
    "flagged": "风险标记",
    "sales_frozen": "售卡冻结",
    "releases_frozen": "划付冻结",
    "risk_warning": "风险提示",
    "state": "状态",
    "late": "逾期答复",
}

# The periodic report (regulator.reports.periodic_pdf, periodic_xlsx).
PERIODIC_TITLE = "单用途预付卡监管定期报告"
CITY_NAME = "全市"
SCHEDULED_JOB = "定时任务"
REFUND_REASON_NAMES = {
    Refund.Reason.COOLING_OFF: "冷静期退卡",
    Refund.Reason.SMALL_BALANCE: "小额余额退款",
    Refund.Reason.VOLUNTARY: "自愿退卡",
    Refund.Reason.MERCHANT_CLOSURE: "商户停业退款",
    Refund.Reason.MERCHANT_DEFAULT: "商户违约退款",
}
FILING_STATE_NAMES = {
    Filing.State.REQUIRED: "待备案",
    Filing.State.SUBMITTED: "已提交待审核",
    Filing.State.ACCEPTED: "已通过",
    Filing.State.RETURNED: "退回补正",
}
